"""Signals for quickturn: files, resampling, framing, VAD, echo cancellation, capture and playback.

Internally all audio is float32 mono in [-1, 1]. Submodules are imported explicitly
(`from audio.vad import SileroVAD`) so that importing one does not pull in onnxruntime, livekit
or PortAudio for code that does not need them. Nothing here knows about language models or the agent.
"""
