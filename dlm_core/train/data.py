"""Chat examples for training: JSONL lines {"messages": [...]} whose last message is the reply.

Each example becomes (prompt ids, reply ids + EOS). At batch time one reply block is chosen; the
earlier blocks join the causal prefix and the rest of the reply is dropped for that step.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DLMError
from ..tokenizer import ChatTokenizer


@dataclass
class Example:
    prompt: list[int]
    reply: list[int]  # ends with EOS


class DataError(DLMError):
    """Training data is missing or malformed."""


def _messages(record: dict) -> list[dict[str, str]]:
    """{"messages": [...]} or a raw dialogue pair {"prev": ..., "reply": ...} (pre-training text)."""
    if "messages" in record:
        return record["messages"]
    return [{"role": "user", "content": record["prev"]}, {"role": "assistant", "content": record["reply"]}]


def read_chat_jsonl(path: str | Path, kinds: Sequence[str] = ()) -> list[list[dict[str, str]]]:
    """Read .jsonl or .jsonl.gz chat examples; with ``kinds``, only records whose "kind" is one of them."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"training data not found: {path}")
    out = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if kinds and record.get("kind") not in kinds:
                    continue
                messages = _messages(record)
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}:{n}: expected a JSON object with 'messages' (or 'prev' and 'reply'): {exc}"
                ) from exc
            if not messages or messages[-1].get("role") != "assistant":
                raise DataError(f"{path}:{n}: the last message must be the assistant's reply")
            out.append(messages)
    if not out:
        raise DataError(f"{path} holds no examples" + (f" of kinds {list(kinds)}" if kinds else ""))
    return out


def tokenize_examples(
    conversations: list[list[dict[str, str]]],
    tokenizer: ChatTokenizer,
    *,
    eos_id: int,
    max_context: int,
    block_len: int,
    max_reply_tokens: int,
) -> tuple[list[Example], int]:
    """Returns (examples that fit, number skipped because they did not)."""
    prompts = [tokenizer.render(c[:-1], add_generation_prompt=True) for c in conversations]
    replies = [c[-1]["content"].strip() for c in conversations]
    enc_p = tokenizer.tokenizer.encode_batch(prompts, add_special_tokens=False)
    enc_r = tokenizer.tokenizer.encode_batch(replies, add_special_tokens=False)
    examples, skipped = [], 0
    for p, r in zip(enc_p, enc_r):
        reply = r.ids + [eos_id]
        padded = -(-len(reply) // block_len) * block_len
        if len(reply) > max_reply_tokens or len(p.ids) + padded > max_context:
            skipped += 1
            continue
        examples.append(Example(p.ids, reply))
    return examples, skipped


def sample_block(
    example: Example, block_len: int, pad_id: int, rng: random.Random
) -> tuple[list[int], list[int]]:
    """(causal prefix, block of exactly ``block_len`` ids) for a uniformly chosen reply block."""
    n_blocks = -(-len(example.reply) // block_len)
    k = rng.randrange(n_blocks)
    block = example.reply[k * block_len : (k + 1) * block_len]
    block = block + [pad_id] * (block_len - len(block))
    return example.prompt + example.reply[: k * block_len], block
