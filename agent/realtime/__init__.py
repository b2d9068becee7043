"""``quickturn serve``: a WebSocket voice API shaped like the OpenAI Realtime API (GA event names).

``protocol`` is the sans-I/O half (client events in, server events out, per-connection state);
``server`` puts it on a ``websockets`` server in front of one ``VoicePipeline`` per connection.
Only the protocol is imported here, so using it does not load any model code.
"""

from .protocol import RealtimeProtocolError, RealtimeSession, parse_client_event

__all__ = ["RealtimeProtocolError", "RealtimeSession", "parse_client_event"]
