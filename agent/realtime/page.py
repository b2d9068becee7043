"""The browser page of ``quickturn serve``: static files shipped in ``agent/realtime/web/``, served at ``/``.

The page is plain HTML + JavaScript (no build step, nothing from a CDN) and talks to the same process
over the Realtime WebSocket at ``/v1/realtime``. ``/config.json`` tells it whether to ask for the key.
"""

from __future__ import annotations

import email.utils
import functools
import json
from http import HTTPStatus
from importlib.resources import files

from websockets.datastructures import Headers
from websockets.http11 import Response

# URL path -> file in agent/realtime/web/. Only these are served: no path is ever joined from a request.
PAGES = {
    "/": "index.html",
    "/index.html": "index.html",
    "/app.js": "app.js",
    "/worklet.js": "worklet.js",
    "/style.css": "style.css",
}
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
}
# The page loads only its own files and talks only to its own origin (ws: included by 'self').
CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"


@functools.cache
def _read(name: str) -> bytes:
    return files("agent.realtime").joinpath("web", name).read_bytes()


def page_response(path: str, *, realtime_path: str, api_key_required: bool) -> Response | None:
    """The HTTP response for a page path, or None when ``path`` is not one of the page's files."""
    if path == "/config.json":
        body = json.dumps({"realtime_path": realtime_path, "api_key_required": api_key_required}).encode()
        kind = "json"
    elif path in PAGES:
        name = PAGES[path]
        body, kind = _read(name), name.rsplit(".", 1)[1]
    else:
        return None
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", CONTENT_TYPES[kind]),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", CSP),
        ]
    )
    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)
