"""``quickturn serve``'s secure defaults on their own: bind check, Origin check, key comparison and the
failed-auth limiter (an injected clock: no sleeps). The server applying them is tested over real sockets
in test_realtime_server.py.
"""

from __future__ import annotations

import pytest

from agent.realtime.security import (
    AuthLimiter,
    bind_problem,
    is_loopback,
    keys_match,
    normalize_origin,
    origin_allowed,
)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert bind_problem(host, api_key="", insecure=False) is None


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "", "::", "192.168.1.10", "10.0.0.1", "example.com", "128.0.0.1"]
)
def test_a_public_bind_needs_a_key_or_insecure(host: str) -> None:
    assert not is_loopback(host)
    problem = bind_problem(host, api_key="", insecure=False)
    assert problem is not None and "server.api_key" in problem and "--insecure" in problem
    assert (repr(host) if host else "every interface") in problem
    assert bind_problem(host, api_key="k", insecure=False) is None
    assert bind_problem(host, api_key="", insecure=True) is None


def test_origin_normalization() -> None:
    assert normalize_origin("HTTPS://Example.COM") == "https://example.com:443"
    assert normalize_origin("http://localhost:8765") == "http://localhost:8765"
    assert normalize_origin("http://[::1]:80") == "http://[::1]:80"
    for junk in (
        "null",
        "",
        "example.com",
        "ftp://x",
        "http://",
        "http://a/b",
        "http://a:99999",
        "http://u@a",
    ):
        assert normalize_origin(junk) is None, junk


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "127.0.0.1:8765", [], True),  # not a browser (SDKs, scripts)
        ("http://127.0.0.1:8765", "127.0.0.1:8765", [], True),  # the server's own page
        ("http://LOCALHOST:8765", "localhost:8765", [], True),
        ("http://[::1]:8765", "[::1]:8765", [], True),
        ("https://voice.example", "voice.example", [], True),  # Host without a port: the default one
        ("http://voice.example", "voice.example:80", [], True),
        ("https://voice.example", "voice.example:80", [], False),
        ("http://127.0.0.1:9999", "127.0.0.1:8765", [], False),  # another local server's page
        ("http://localhost:8765", "127.0.0.1:8765", [], False),  # names are not resolved
        ("https://evil.example", "127.0.0.1:8765", [], False),
        ("https://evil.example", None, [], False),
        ("null", "127.0.0.1:8765", [], False),  # sandboxed frames, file:// pages
        ("null", "127.0.0.1:8765", ["null"], True),
        ("https://app.example", "127.0.0.1:8765", ["https://app.example"], True),
        ("https://APP.example:443", "127.0.0.1:8765", ["https://app.example"], True),
        ("http://app.example", "127.0.0.1:8765", ["https://app.example"], False),  # scheme counts
        ("https://evil.example", "127.0.0.1:8765", ["https://app.example"], False),
        ("https://anything.example", "127.0.0.1:8765", ["*"], True),
        ("http://127.0.0.1:8765", "127.0.0.1:bad", [], False),
    ],
)
def test_origin_allowed(origin: str | None, host: str | None, allowed: list[str], ok: bool) -> None:
    assert origin_allowed(origin, host, allowed) is ok


def test_keys_match() -> None:
    assert keys_match("s3cret", "s3cret")
    for wrong in ("", "s3cre", "s3cret ", "S3CRET", "s3cret" * 100, "\ud800"):
        assert not keys_match(wrong, "s3cret"), wrong


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_limiter_blocks_after_too_many_failures_in_the_window_then_forgives() -> None:
    clock = Clock()
    lim = AuthLimiter(max_failures=5, window_s=60, block_s=60, clock=clock)
    for _ in range(4):
        assert not lim.failed("1.2.3.4")
        clock.t += 10
    assert lim.retry_after("1.2.3.4") == 0.0
    assert lim.failed("1.2.3.4")  # the fifth within 60 s
    assert lim.retry_after("1.2.3.4") == 60.0
    assert lim.retry_after("5.6.7.8") == 0.0  # per address
    clock.t += 59.5
    assert lim.retry_after("1.2.3.4") == pytest.approx(0.5)
    clock.t += 0.5
    assert lim.retry_after("1.2.3.4") == 0.0  # served its time, starts with a clean slate
    assert not lim.failed("1.2.3.4")


def test_limiter_counts_only_failures_inside_the_window() -> None:
    clock = Clock()
    lim = AuthLimiter(max_failures=3, window_s=60, block_s=30, clock=clock)
    for _ in range(10):  # one every 30 s: never 3 within 60 s
        assert not lim.failed("a")
        clock.t += 30.0
    assert lim.retry_after("a") == 0.0
    clock.t += 30.0  # the last failure has left the window
    assert not lim.failed("a") and not lim.failed("a")
    lim.succeeded("a")  # a right key clears the count
    assert not lim.failed("a") and not lim.failed("a")
    assert lim.failed("a")


def test_limiter_memory_is_bounded() -> None:
    clock = Clock()
    lim = AuthLimiter(max_failures=2, window_s=60, block_s=60, max_clients=100, clock=clock)
    for i in range(10_000):
        lim.failed(f"10.0.{i // 256}.{i % 256}")
        lim.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(lim._failures) <= 100 and len(lim._blocked_until) <= 100
    assert lim.retry_after("10.0.39.15") > 0  # the latest stay blocked


def test_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        AuthLimiter(max_failures=0)
