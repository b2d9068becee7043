"""Score tool calls on the held-out request set (``recipe/data/tool_eval.jsonl``, ``recipe.tools_data``).

    python -m recipe.tool_eval                              # the shipped model
    python -m recipe.tool_eval --model DIR --json out.json  # another one

Every item goes through ``dlm_core.tools.ToolCaller.decide(messages, tools, "auto")`` exactly as
serving calls it (the tool sentence is added by ``decide``). Metrics:
  right_tool     share of call items decided as a call of the expected tool
  all_args       share of call items with the right tool and every argument right (and none extra)
  false_calls    share of speech items (small talk, questions, requests nothing listed covers) that
                 became a call
  seen / unseen  right_tool and all_args split by whether the tool was in the training tool set
  decide_ms      p50 / p95 of ``decide`` on one thread, the prompt prefilled as while the user speaks
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from agent.reply import EMBEDDED_MODEL
from dlm_core import DiffusionEngine
from dlm_core.tools import Tool, ToolCaller, tools_sentence, with_tools

EVAL = Path(__file__).resolve().parent / "data" / "tool_eval.jsonl"


def base_messages(row: dict[str, Any], tools: list[Tool]) -> list[dict[str, str]]:
    """The item's conversation without its tool sentence (``decide`` adds it back)."""
    messages = [dict(m) for m in row["messages"][:-1]]
    suffix = " " + tools_sentence(tools)
    if not messages[0]["content"].endswith(suffix):
        raise ValueError(
            f"item's system message does not end with its tool sentence: {messages[0]['content']!r}"
        )
    messages[0]["content"] = messages[0]["content"][: -len(suffix)]
    return messages


def same_arguments(got: dict[str, Any], want: dict[str, Any]) -> bool:
    def norm(v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    return {k: norm(v) for k, v in got.items()} == {k: norm(v) for k, v in want.items()}


def evaluate(model: str, path: Path = EVAL, limit: int = 0, name_pass: bool = False) -> dict[str, Any]:
    torch.set_num_threads(1)
    engine = DiffusionEngine.from_pretrained(model, max_context=512)
    caller = ToolCaller(engine, name_pass=name_pass)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if limit:
        rows = rows[:limit]
    items, times = [], []
    for row in rows:
        tools = [Tool(t["name"], t["description"], t["parameters"]) for t in row["tools"]]
        messages = base_messages(row, tools)
        engine.prefill(with_tools(messages[:-1], tools))  # as while the user speaks
        t0 = time.perf_counter()
        call = caller.decide(messages, tools, "auto")
        times.append((time.perf_counter() - t0) * 1e3)
        item = {
            "user": messages[-1]["content"],
            "kind": row["kind"],
            "unseen": bool(row.get("unseen")),
            "want": None
            if row["kind"] != "tool_call"
            else {"name": row["tool"], "arguments": row["arguments"]},
            "got": None if call is None else {"name": call.name, "arguments": dict(call.arguments)},
            "p_call": caller.last_trace.get("p_call"),
        }
        want, got = item["want"], item["got"]
        item["right_tool"] = want is not None and got is not None and got["name"] == want["name"]
        item["all_args"] = item["right_tool"] and same_arguments(got["arguments"], want["arguments"])  # type: ignore[index]
        items.append(item)
    return {
        "model": str(model) + (" +name pass" if name_pass else ""),
        "n": len(items),
        **summary(items, times),
        "items": items,
    }


def summary(items: list[dict[str, Any]], times: list[float]) -> dict[str, Any]:
    def share(xs: list[dict[str, Any]], key: str) -> float:
        return round(100 * sum(bool(x[key]) for x in xs) / max(1, len(xs)), 1)

    calls = [x for x in items if x["kind"] == "tool_call"]
    speech = [x for x in items if x["kind"] != "tool_call"]
    seen = [x for x in calls if not x["unseen"]]
    unseen = [x for x in calls if x["unseen"]]
    ordered = sorted(times)
    return {
        "calls": len(calls),
        "speech": len(speech),
        "right_tool": share(calls, "right_tool"),
        "all_args": share(calls, "all_args"),
        "false_calls": round(100 * sum(x["got"] is not None for x in speech) / max(1, len(speech)), 1),
        "seen": {
            "n": len(seen),
            "right_tool": share(seen, "right_tool"),
            "all_args": share(seen, "all_args"),
        },
        "unseen": {
            "n": len(unseen),
            "right_tool": share(unseen, "right_tool"),
            "all_args": share(unseen, "all_args"),
        },
        "decide_ms": {
            "p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipe.tool_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", action="append", help="model folder (repeat to compare; default: the shipped one)"
    )
    ap.add_argument("--data", type=Path, default=EVAL)
    ap.add_argument("--n", type=int, default=0, help="only the first N items")
    ap.add_argument("--json", metavar="OUT", help="write every item's result here")
    ap.add_argument("--name-pass", action="store_true", help="score tool names in a forward of their own")
    args = ap.parse_args(argv)
    results = [evaluate(m, args.data, args.n, args.name_pass) for m in (args.model or [str(EMBEDDED_MODEL)])]
    print(
        "model | calls | right tool % | all args % | false calls % | seen tool/args % | unseen tool/args % | decide p50/p95 ms"
    )
    for r in results:
        s, u = r["seen"], r["unseen"]
        print(
            f"{r['model']} | {r['calls']} | {r['right_tool']} | {r['all_args']} | {r['false_calls']} (of {r['speech']}) | "
            f"{s['right_tool']}/{s['all_args']} | {u['right_tool']}/{u['all_args']} | "
            f"{r['decide_ms']['p50']}/{r['decide_ms']['p95']}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
