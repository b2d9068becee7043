"""A stored example's context as the agent would write it (``agent.prompt.Context``).

A training or held-out example stores only its messages. Its context is worked out again the way the
agent works it out: the assistant's name and the clock read from the first sentences, the memory and
the sum from the example's own user messages. The data build writes every example's system message
from this (``intents.Example.agent_messages``), and the draft index builder and the evaluation read
the values from it, so all three use the agent's one path from values to sentences.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from agent.prompt import Context

# The first sentences of every context (``agent.prompt.context_sentences``).
_CONTEXT = re.compile(
    r"Your name is (?P<name>[^.]+)\. Today is \w+, (?P<date>\w+ \d+, \d+)\. The time is (?P<time>\d+:\d\d [AP]M)\."
)


def context_of(chat: Sequence[dict[str, str]]) -> Context | None:
    """The context of a chat that ends with the user's message, or None without a context sentence:
    what the agent would write there for this conversation."""
    if not chat or chat[0]["role"] != "system" or (m := _CONTEXT.match(chat[0]["content"])) is None:
        return None
    now = datetime.strptime(f"{m['date']} {m['time']}", "%B %d, %Y %I:%M %p")
    earlier = [msg["content"] for msg in chat[1:-1] if msg["role"] == "user"]
    return Context.for_turn(m["name"], now, earlier, chat[-1]["content"])
