"""The listener evaluation: the hand-written prompt set is valid and apart from the model's data, the
blind sheet hides the systems, and the report computes its table from labels and key."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.config import QuickturnConfig
from recipe.listener_eval.prompts import (
    CATEGORIES,
    PromptFileError,
    data_user_texts,
    load_prompts,
    overlaps,
)
from recipe.listener_eval.report import (
    LabelError,
    Row,
    markdown,
    read_labels,
    says_answer,
    tabulate,
    write_card,
)
from recipe.listener_eval.run import Reply, agent_prompt, blind_sheet


@pytest.fixture(scope="module")
def prompts() -> list[dict]:
    return load_prompts()


def test_prompt_set_is_large_balanced_and_well_formed(prompts: list[dict]) -> None:
    assert len(prompts) >= 300
    counts = Counter(p["category"] for p in prompts)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 25, counts
    assert len({p["id"] for p in prompts}) == len(prompts)
    assert all(p["messages"][-1]["role"] == "user" for p in prompts)
    multi = [p for p in prompts if p["category"] == "follow_up"]
    assert all(len(p["messages"]) >= 3 for p in multi)  # a follow-up has its earlier turns
    noisy = [p["messages"][-1]["content"] for p in prompts if p["category"] == "noisy_asr"]
    assert all(t == t.lower() and not any(c in t for c in ".,?!") for t in noisy)


def test_no_prompt_repeats_a_user_message_of_the_models_data(prompts: list[dict]) -> None:
    seen = data_user_texts()
    assert len(seen) > 1000  # the data was read (a wrong path would pass the check below vacuously)
    assert overlaps(prompts, seen) == {}
    # the check itself: a training user message, reworded only in case and punctuation, is caught
    first = json.loads((Path("recipe/data/heldout.jsonl")).read_text().splitlines()[0])
    text = next(m["content"] for m in first["messages"] if m["role"] == "user")
    probe = {"id": "x", "messages": [{"role": "user", "content": text.upper() + "!!"}]}
    assert overlaps([probe], seen) == {"x": [probe["messages"][0]["content"]]}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "a", "category": "chat", "messages": [{"role": "user", "content": "hi"}]}', "category"),
        ('{"id": "a", "category": "feelings", "messages": [{"role": "assistant", "content": "hi"}]}', "user"),
        (
            '{"id": "a", "category": "feelings", "messages": [{"role": "user", "content": "hi"}, '
            '{"role": "assistant", "content": "hello"}]}',
            "last message",
        ),
        ('{"category": "feelings", "messages": [{"role": "user", "content": "hi"}]}', "missing id"),
    ],
)
def test_a_broken_prompt_line_is_named(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(PromptFileError, match=problem):
        load_prompts(path)


def test_the_agent_prompt_carries_history_and_memory(prompts: list[dict]) -> None:
    item = next(p for p in prompts if p["id"] == "self-021")  # "Hi, I'm Tomasz, by the way." ...
    prompt = agent_prompt(item, QuickturnConfig())
    assert prompt[0]["role"] == "system" and "Your name is Quinn." in prompt[0]["content"]
    assert "Thursday" in prompt[0]["content"]  # the fixed clock
    assert [m["content"] for m in prompt[1:]] == [m["content"] for m in item["messages"]]
    assert prompt.context is not None


def test_the_sheet_is_shuffled_blind_and_keyed(prompts: list[dict]) -> None:
    items = prompts[:6]
    replies = [Reply(p["id"], s, f"{s} says {p['id']}", 1.0) for p in items for s in ("shipped", "teacher")]
    sheet, key = blind_sheet(items, replies, QuickturnConfig(), seed=3)
    assert len(sheet) == len(replies) == len(key["items"])
    assert all(set(row) == {"id", "context", "conversation", "reply"} for row in sheet)
    assert all("shipped" not in row["id"] and "teacher" not in row["id"] for row in sheet)
    assert [r["reply"] for r in sheet] != [r.text for r in replies]  # shuffled
    for row in sheet:  # the key leads back to the reply's system and prompt
        k = key["items"][row["id"]]
        assert row["reply"] == f"{k['system']} says {k['prompt_id']}"
    again, _ = blind_sheet(items, replies, QuickturnConfig(), seed=3)
    assert again == sheet


def test_says_answer() -> None:
    assert says_answer("Lisbon is the capital.", "Lisbon")
    assert says_answer("You're allergic to peanuts.", "peanut")
    assert says_answer("It has eight legs.", "8|eight")
    assert not says_answer("It has eighteen legs.", "8|eight")
    assert not says_answer("Maybe later.", "May")


def tiny() -> tuple[list[dict], dict[str, dict], dict[str, str]]:
    user = [{"role": "user", "content": "q"}]
    prompts = [
        {"id": "k1", "category": "knowledge", "messages": user, "known_answer": "Paris"},
        {"id": "k2", "category": "knowledge", "messages": user, "known_answer": "7|seven"},
        {"id": "f1", "category": "feelings", "messages": user},
    ]
    key = {
        "a": {"system": "shipped", "prompt_id": "k1"},
        "b": {"system": "shipped", "prompt_id": "k2"},
        "c": {"system": "shipped", "prompt_id": "f1"},
        "d": {"system": "teacher", "prompt_id": "k1"},
        "e": {"system": "teacher", "prompt_id": "k2"},
        "f": {"system": "teacher", "prompt_id": "f1"},
    }
    replies = {
        "a": "It's Paris.",
        "b": "There are six.",
        "c": "Oh no.",
        "d": "Paris, of course.",
        "e": "Seven days.",
        "f": "I'm sorry to hear that.",
    }
    return prompts, key, replies


def test_report_table_from_hand_made_labels(tmp_path: Path) -> None:
    prompts, key, replies = tiny()
    lines = [
        {"id": "a", "label": "sensible"},
        {"id": "b", "label": "wrong"},
        {"id": "c", "label": "garbled"},
        {"id": "d", "label": "acceptable"},
        {"id": "e", "label": "sensible"},  # "f" left unlabelled
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    rows = tabulate(prompts, key, replies, read_labels(path, key))
    z = {"sensible": 0.0, "acceptable": 0.0, "wrong": 0.0, "garbled": 0.0}
    assert rows == [
        Row("feelings", "shipped", 1, 1, z | {"garbled": 1.0}, 0, 0),  # CATEGORIES order
        Row("feelings", "teacher", 1, 0, z, 0, 0),
        Row("knowledge", "shipped", 2, 2, z | {"sensible": 0.5, "wrong": 0.5}, 2, 1),
        Row("knowledge", "teacher", 2, 2, z | {"sensible": 0.5, "acceptable": 0.5}, 2, 2),
        Row("all", "shipped", 3, 3, z | {"sensible": 1 / 3, "wrong": 1 / 3, "garbled": 1 / 3}, 2, 1),
        Row("all", "teacher", 3, 2, z | {"sensible": 0.5, "acceptable": 0.5}, 2, 2),
    ]
    table = markdown(rows)
    assert "| knowledge | shipped | 2/2 | 50% | 0% | 50% | 0% | 50% (1/2) |" in table
    assert "| feelings | teacher | 0/1 | — | — | — | — | — |" in table
    card = tmp_path / "card.md"
    card.write_text("# Card\n\ntext\n")
    write_card(table, card)
    write_card(table, card)  # a second write replaces the first
    assert card.read_text().count("| knowledge | shipped |") == 1 and card.read_text().startswith("# Card")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"id": "zz", "label": "sensible"}, "not in the key"),
        ({"id": "a", "label": "great"}, "not one of"),
    ],
)
def test_bad_labels_are_named(tmp_path: Path, line: dict, problem: str) -> None:
    _, key, _ = tiny()
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(LabelError, match=problem):
        read_labels(path, key)


def test_a_label_given_twice_is_named(tmp_path: Path) -> None:
    _, key, _ = tiny()
    path = tmp_path / "labels.jsonl"
    path.write_text(
        json.dumps({"id": "a", "label": "wrong"}) + "\n" + json.dumps({"id": "a", "label": "wrong"}) + "\n"
    )
    with pytest.raises(LabelError, match="twice"):
        read_labels(path, key)
