"""Function calling over ``quickturn serve``: how long a typed request takes to become a call, beside a
plain spoken reply and the spoken answer to a function's output, in one session on one server.

    python -m benchmarks.realtime_tools --rounds 8 [--json out/bench/realtime_tools.json]

Per round, alternating in one connection (manual turns, so nothing depends on VAD timing):
  plain   "What's the weather like in Paris?" with ``tool_choice: none`` → first ``output_audio.delta``
  call    the same request with ``tool_choice: required`` → ``response.function_call_arguments.done``
  answer  its ``function_call_output`` + ``response.create`` → first ``output_audio.delta`` (said, no model)
Each time is from sending ``response.create`` to that event, over a loopback socket, so it includes the
protocol's own work; a reply's end waits for its playback (the server follows the client's playhead).
Then, with ``tool_choice: auto``, the model decides alone on ``AUTO_REQUESTS`` (requests the tools cover,
and small talk they do not): which became calls, with what arguments (a check of the model's training
through the whole server, not its evaluation: that is ``recipe``'s held-out set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from agent.config import load_config
from agent.pipeline import Services
from agent.realtime.server import RealtimeServer

REQUEST = "What's the weather like in Paris?"
AUTO_REQUESTS = [  # (request, the tool it should call or None to speak)
    ("Set a timer for ten minutes.", "set_timer"),
    ("What's the weather in Berlin?", "get_weather"),
    ("Start a timer for 5 minutes please.", "set_timer"),
    ("How's the weather in Tokyo today?", "get_weather"),
    ("Hi there, how are you today?", None),
    ("Tell me a funny joke.", None),
    ("What's your name?", None),
    ("Thanks, goodbye!", None),
]
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "type": "function",
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {"minutes": {"type": "integer"}},
            "required": ["minutes"],
        },
    },
]


async def _until(ws: ClientConnection, kind: str) -> tuple[float, dict]:
    """Read events up to ``kind``; its arrival time and the event (an ``error`` stops the run)."""
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "error":
            raise SystemExit(f"server error: {event['error']['message']}")
        if event["type"] == kind:
            return time.perf_counter(), event


async def _respond(ws: ClientConnection, first: str, response: dict | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    await ws.send(json.dumps({"type": "response.create", "response": response or {}}))
    t, event = await _until(ws, first)
    if first != "response.done":
        await _until(ws, "response.done")
    return (t - t0) * 1e3, event


async def _text(ws: ClientConnection, text: str) -> None:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
    await _until(ws, "conversation.item.done")


async def run(rounds: int) -> dict:
    cfg = load_config(None, [])
    services = await asyncio.to_thread(Services.load, cfg)
    if services.tool_caller is None:
        raise SystemExit("this build has no tool caller (dlm_core.tools.ToolCaller): nothing to measure")
    times: dict[str, list[float]] = {"plain": [], "call": [], "answer": []}
    calls: list[str] = []
    server = RealtimeServer(cfg, services, host="127.0.0.1", port=0)
    async with server, connect(server.url, max_size=None) as ws:  # server.url once it listens
        await _until(ws, "session.created")
        session = {"type": "realtime", "tools": TOOLS, "audio": {"input": {"turn_detection": None}}}
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        await _until(ws, "session.updated")
        for _ in range(rounds):
            await _text(ws, REQUEST)
            ms, _ = await _respond(ws, "response.output_audio.delta", {"tool_choice": "none"})
            times["plain"].append(ms)
            await _text(ws, REQUEST)
            ms, done = await _respond(
                ws, "response.function_call_arguments.done", {"tool_choice": "required"}
            )
            times["call"].append(ms)
            calls.append(f"{done['name']}({done['arguments']})")
            output = {"type": "function_call_output", "call_id": done["call_id"],
                      "output": "It's sunny and 18 degrees in Paris."}  # fmt: skip
            await ws.send(json.dumps({"type": "conversation.item.create", "item": output}))
            await _until(ws, "conversation.item.done")
            ms, _ = await _respond(ws, "response.output_audio.delta")
            times["answer"].append(ms)
        auto = []
        for text, expected in AUTO_REQUESTS:
            await _text(ws, text)
            _, done = await _respond(ws, "response.done", {"tool_choice": "auto"})
            call = next((o for o in done["response"]["output"] if o["type"] == "function_call"), None)
            said = call is None and done["response"]["output"]
            auto.append({"request": text, "expected": expected,
                         "call": f"{call['name']}({call['arguments']})" if call else None,
                         "said": said[0]["content"][0]["transcript"] if said else None})  # fmt: skip
            if call is not None:  # answer it, so the next request starts from a settled session
                output = {"type": "function_call_output", "call_id": call["call_id"], "output": "Done."}
                await ws.send(json.dumps({"type": "conversation.item.create", "item": output}))
                await _until(ws, "conversation.item.done")
                await _respond(ws, "response.done")
    return {
        "rounds": rounds,
        "median_ms": {k: round(statistics.median(v), 1) for k, v in times.items()},
        "ms": {k: [round(x, 1) for x in v] for k, v in times.items()},
        "calls": sorted(set(calls)),
        "auto_right": sum(
            (a["call"] or "").startswith(f"{a['expected']}(") if a["expected"] else a["call"] is None
            for a in auto
        ),  # fmt: skip
        "auto": auto,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = asyncio.run(run(args.rounds))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
