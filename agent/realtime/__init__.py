"""``quickturn serve``: a WebSocket voice API shaped like the OpenAI Realtime API (GA event names).

``protocol`` parses and validates client events; ``session`` holds one connection's rules (client
messages and pipeline events in, server events and actions out) — both sans-I/O; ``server`` puts them
on a ``websockets`` server in front of one ``VoicePipeline`` per connection. Only the sans-I/O half is
imported here, so using it does not load any model code.
"""

from .protocol import RealtimeProtocolError, parse_client_event
from .session import RealtimeSession

__all__ = ["RealtimeProtocolError", "RealtimeSession", "parse_client_event"]
