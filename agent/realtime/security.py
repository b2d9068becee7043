"""``quickturn serve``'s secure defaults, as pure functions and one small class (no sockets, no clock reads
unless given one): who may bind where, which browser pages may connect, and when a client guessing API
keys is made to wait.

- A server reachable from other machines needs ``server.api_key`` (or an explicit ``server.insecure``):
  a voice agent left open on a LAN would let anyone talk to it and read its replies.
- Browsers send ``Origin`` with every WebSocket upgrade and do not apply CORS to WebSockets, so any web
  page could otherwise drive a server on localhost. Only the server's own origin (and an allow-list) may;
  non-browser clients send no ``Origin`` and are not affected.
- Failed API keys are counted per client address; too many in a window and that address gets 429 for a
  while, so a key cannot be guessed at network speed.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
LOOPBACK_NAMES = {"localhost", "localhost."}


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host``: 127.0.0.0/8, ::1 (also IPv4-mapped) or ``localhost``.

    Any other name or address, and "" (every interface), counts as reachable from the network: a
    host name is not resolved here because what it resolves to can change.
    """
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])  # drop an IPv6 zone ("::1%lo")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def bind_problem(host: str, api_key: str, insecure: bool) -> str | None:
    """Why the server must not listen on ``host`` as configured, or None when it may."""
    if api_key or insecure or is_loopback(host):
        return None
    where = repr(host) if host else "every interface"
    return (
        f"refusing to listen on {where} without an API key: other machines could use the server. "
        "Set one (--set server.api_key=SECRET; clients send 'Authorization: Bearer SECRET'), listen on "
        "127.0.0.1, or pass --insecure (server.insecure = true) to serve without authentication"
    )


def _host_port(netloc: str, default_port: int | None) -> tuple[str, int | None] | None:
    """'Example.com:8080' → ('example.com', 8080); None when it is not a host[:port]."""
    try:
        parts = urlsplit("//" + netloc)
        port = parts.port
    except ValueError:  # a bad port or bracket
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return parts.hostname.lower().rstrip("."), default_port if port is None else port


def normalize_origin(origin: str) -> str | None:
    """'HTTPS://Example.com' → 'https://example.com:443' (explicit port), None if not an origin."""
    scheme, sep, rest = origin.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS or not rest or any(c in rest for c in "/?#"):
        return None
    hp = _host_port(rest, DEFAULT_PORTS[scheme])
    if hp is None:
        return None
    host, port = hp
    return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{port}"


def origin_allowed(origin: str | None, host_header: str | None, allowed: Iterable[str]) -> bool:
    """May a WebSocket upgrade with this ``Origin`` go ahead?

    No ``Origin``: a non-browser client (SDKs, scripts), allowed. Otherwise the origin must be the
    server's own (its host and port equal those of the ``Host`` header; a ``Host`` without a port
    matches the origin scheme's default port) or be listed in ``allowed`` ("*" allows any origin).
    """
    if origin is None:
        return True
    listed = list(allowed)
    if "*" in listed:
        return True
    norm = normalize_origin(origin)
    if norm is None:  # "null" (sandboxed frames, file:// pages) or junk: only when listed as written
        return origin.strip() in listed
    if norm in {normalize_origin(a) for a in listed}:
        return True
    if not host_header:
        return False
    scheme = norm.partition("://")[0]
    ours = _host_port(host_header.strip(), DEFAULT_PORTS[scheme])
    theirs = _host_port(norm.partition("://")[2], None)
    return ours is not None and ours == theirs


def keys_match(offered: str, key: str) -> bool:
    """Constant-time key check; both sides are hashed first so the key's length does not leak either."""
    a = hashlib.sha256(offered.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


class AuthLimiter:
    """Failed API keys per client address: ``max_failures`` within ``window_s`` blocks it for ``block_s``.

    While blocked, every attempt from that address is refused (429) without checking its key, the right
    one included, so guessing cannot go on in the background. A success clears the address's failures.
    At most ``max_clients`` addresses are tracked (the least recently failing is forgotten first), so a
    flood of addresses costs bounded memory. ``clock`` is injectable so tests need no sleeps.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 60.0,
        block_s: float = 60.0,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_s <= 0 or block_s <= 0 or max_clients < 1:
            raise ValueError("AuthLimiter needs max_failures >= 1 and positive window, block and size")
        self.max_failures = max_failures
        self.window_s = window_s
        self.block_s = block_s
        self.max_clients = max_clients
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must still wait (0.0: it may try now)."""
        until = self._blocked_until.get(client)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._blocked_until[client]
            return 0.0
        return left

    def failed(self, client: str) -> bool:
        """Count one failure; True when this one blocks the client."""
        now = self.clock()
        times = self._failures.pop(client, None) or collections.deque()
        self._failures[client] = times  # most recent last
        while times and times[0] <= now - self.window_s:
            times.popleft()
        times.append(now)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        if len(times) >= self.max_failures:
            del self._failures[client]
            self._blocked_until[client] = now + self.block_s
            self._prune_blocks(now)
            return True
        return False

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _prune_blocks(self, now: float) -> None:
        if len(self._blocked_until) > self.max_clients:
            for c in [c for c, until in self._blocked_until.items() if until <= now]:
                del self._blocked_until[c]
        while len(self._blocked_until) > self.max_clients:  # still too many: the oldest blocks go first
            del self._blocked_until[next(iter(self._blocked_until))]
