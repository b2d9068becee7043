"""A throwaway mosquitto on 127.0.0.1 (a free port, its own folder): the demo's home hub and the tests'.

with LocalBroker(folder) as broker:   # started; broker.port
    ...
    broker.stop(); broker.start()     # a restart: persistence keeps sessions and retained messages
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType


class BrokerError(RuntimeError):
    """mosquitto is missing, or did not start."""


def mosquitto_path() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    def __init__(self, folder: Path, port: int = 0) -> None:
        exe = mosquitto_path()
        if exe is None:
            raise BrokerError("mosquitto is not installed (apt install mosquitto)")
        self.exe = exe
        self.port = port or _free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {folder}/\n"
            # As root, mosquitto would switch to the 'mosquitto' user and lose access to the folder.
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log_path = self.folder / "mosquitto.log"
        with log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited: {log_path.read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)  # a port that is not open yet has no event to wait on
        raise BrokerError(f"mosquitto did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        """SIGTERM: clients lose the connection; the broker saves sessions and retained messages."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
