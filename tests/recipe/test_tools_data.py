"""The synthetic tool-call data: every call reply is exactly the decoder's skeleton, filled with
values its schema allows and (for strings) words of the request; the held-out set keeps its unseen
tools out of training."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dlm_core.families import FAMILIES
from dlm_core.tokenizer import ChatTokenizer
from dlm_core.tools import CallFormat, Tool, tool_slots, validate_arguments
from recipe.tools_data import TRAIN, UNSEEN, call_example, speech_with_tools, uncovered_example

DATA = Path(__file__).resolve().parents[2] / "recipe" / "data"


@pytest.fixture(scope="module")
def fmt() -> CallFormat:
    tok = ChatTokenizer.from_file(DATA / "tokenizer.json", FAMILIES["quickturn"])
    return CallFormat(tok, tok.token_id("<|pad|>"))


@pytest.mark.parametrize("specs", [TRAIN, UNSEEN], ids=["train", "unseen"])
def test_call_replies_are_filled_skeletons(fmt: CallFormat, specs: dict) -> None:
    rng = random.Random(3)
    pool = {**TRAIN, **UNSEEN}
    for name in specs:
        for _ in range(25):
            row = call_example(rng, fmt, specs, pool, name)
            tools = [Tool(t["name"], t["description"], t["parameters"]) for t in row["tools"]]
            tool = next(t for t in tools if t.name == name)
            args = row["arguments"]
            validate_arguments(tool, args)
            reply = row["messages"][-1]["content"]
            ids = fmt.call_ids(tool, args, fmt.name_width(tools))
            assert fmt.tokenizer.encode(reply) == ids
            assert len(ids) + 1 <= 32  # the call and its end fit one denoising block
            user = row["messages"][1]["content"]
            for slot in tool_slots(tool):
                if slot.kind == "copy" and slot.key in args:
                    assert f" {args[slot.key]}" in f" {user}", (args[slot.key], user)


def test_speech_items_keep_their_reply_and_list_tools(fmt: CallFormat) -> None:
    rng = random.Random(4)
    conv = [{"role": "system", "content": "Your name is Ada."}, {"role": "user", "content": "hi"}]
    conv.append({"role": "assistant", "content": "Hello!"})
    row = speech_with_tools(rng, conv, TRAIN, "tool_speech")
    assert row["messages"][-1] == conv[-1] and " Tools: " in row["messages"][0]["content"]
    row = uncovered_example(rng, TRAIN, TRAIN)
    assert not row["messages"][-1]["content"].startswith("{")


def test_held_out_set_names_its_unseen_tools() -> None:
    rows = [json.loads(line) for line in (DATA / "tool_eval.jsonl").read_text().splitlines()]
    assert len(rows) >= 200
    unseen = {r["tool"] for r in rows if r.get("unseen")}
    assert unseen == set(UNSEEN) and not unseen & set(TRAIN)
    training = (DATA / "train_tools.jsonl").read_text()
    for name in UNSEEN:
        assert f" {name}(" not in training  # never listed in a training prompt
