"""The reply model's prompt: injected context plus conversation history.

The embedded model is trained on exactly these sentences (the offline recipe, ``recipe/``), so the
wording here and in the training data must stay in step: change one, rebuild the data and retrain.

The context is kept as typed values too (``Context``): the draft index fills its reply templates from
them ("It's {time}." → "It's 2:05 PM."), never by reading the sentences back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .calculator import WorkedSum, worked_sum
from .memory import Fact, UserMemory
from .sources import SourceAnswer, look_up


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def spoken_time(now: datetime) -> str:
    """'2:05 PM' — the form the TTS reads well and the model copies."""
    hour = now.hour % 12 or 12
    return f"{hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}"


def spoken_date(now: datetime) -> str:
    """'Tuesday, November 26' (weekday first: the most asked-for part)."""
    return f"{now.strftime('%A')}, {now.strftime('%B')} {now.day}"


def part_of_day(now: datetime) -> str:
    """'the morning' (5–12 h), 'the afternoon' (12–17 h), 'the evening' (17–21 h) or 'nighttime'."""
    if 5 <= now.hour < 12:
        return "the morning"
    if 12 <= now.hour < 17:
        return "the afternoon"
    return "the evening" if 17 <= now.hour < 21 else "nighttime"


def context_sentences(assistant_name: str, now: datetime, extra_facts: tuple[str, ...] = ()) -> str:
    """Plain sentences the agent injects as the system message of every turn."""
    parts = [
        f"Your name is {assistant_name}.",
        f"Today is {spoken_date(now)}, {now.year}.",
        f"The time is {spoken_time(now)}.",
        # Worked out here, not left to the model: "Is it the evening yet?" then has its answer in view.
        f"It is {part_of_day(now)}.",
    ]
    parts.extend(extra_facts)
    return " ".join(parts)


@dataclass(frozen=True)
class Context:
    """What one turn's system message says, as values: who the assistant is, when it is, what the user
    told about themselves, and the sum the agent worked out from the request (if any)."""

    assistant_name: str
    now: datetime
    facts: tuple[Fact, ...] = ()
    worked: WorkedSum | None = None
    grounding: SourceAnswer | None = None  # what an offline source says to the request (agent.sources)

    @classmethod
    def for_turn(
        cls,
        assistant_name: str,
        now: datetime,
        earlier_user_texts: Iterable[str],
        user_text: str,
        grounded: bool = False,
    ) -> Context:
        """The context the agent writes for ``user_text``, after the user said ``earlier_user_texts``.
        ``grounded``: with the offline sources' answer (``agent.sources``), as serving writes it; the
        committed training data predates the sources and is rebuilt from contexts without it."""
        earlier = list(earlier_user_texts)
        memory = UserMemory.from_texts(earlier)
        grounding = ground(user_text, earlier[-1] if earlier else None, now) if grounded else None
        return cls(assistant_name, now, memory.ordered(), worked_sum(user_text), grounding)

    @property
    def system(self) -> str:
        """The system message: the context sentences, the memory's, the worked-out sum's, then the
        source's answer to the request."""
        facts = tuple(f.sentence() for f in self.facts)
        text = context_sentences(self.assistant_name, self.now, facts)
        text = f"{text} {self.worked.sentence}" if self.worked else text
        return f"{text} {self.grounding.sentence}" if self.grounding else text

    def values(self) -> dict[str, str]:
        """The values a draft reply template may hold, by placeholder ("time": "2:05 PM")."""
        values = {
            "name": self.assistant_name,
            "weekday": self.now.strftime("%A"),
            "month": self.now.strftime("%B"),
            "day": str(self.now.day),
            "year": str(self.now.year),
            "time": spoken_time(self.now),
            "part": part_of_day(self.now),
        }
        if self.worked:
            values |= {"expr": self.worked.expr, "result": self.worked.result}
        if self.grounding:
            values |= {"answer": self.grounding.sentence}
        return values | {f.placeholder: f.spoken for f in self.facts}


def ground(
    user_text: str, previous_user_text: str | None, now: datetime, turn: int = 0
) -> SourceAnswer | None:
    """The offline sources' answer to the request (``previous_user_text`` for follow-ups: "And of
    Portugal?"); the clock's minute and the conversation's turn pick which joke, so asking again — in
    the next turn or later — gives another one."""
    if not user_text.strip():
        return None
    return look_up(user_text, previous_user_text, seed=now.hour * 60 + now.minute + turn)


class Prompt(list[dict[str, str]]):
    """The messages the reply model reads, and the ``Context`` their system message was written from."""

    def __init__(self, messages: Iterable[dict[str, str]], context: Context | None = None) -> None:
        super().__init__(messages)
        self.context = context


@dataclass
class Conversation:
    """History of finished turns; the assistant side holds only what the user actually heard.

    The history keeps the last ``max_turns`` exchanges; what the user said about themselves is kept for
    the whole conversation (``memory``) and injected as context sentences. Facts stated in the turn being
    answered are not injected yet: the context stays the one prefilled while the user spoke."""

    assistant_name: str = "Quinn"
    max_turns: int = 6
    turns: list[Message] = field(default_factory=list)
    memory: UserMemory = field(default_factory=UserMemory)

    def add_user(self, text: str) -> None:
        self.turns.append(Message("user", text))
        self.memory.observe(text)

    def add_assistant(self, text: str) -> None:
        if text.strip():
            self.turns.append(Message("assistant", text))
        self.turns = self.turns[-2 * self.max_turns :]

    def revise_last_reply(self, heard: str) -> bool:
        """The latest exchange's reply becomes ``heard`` (a client said how much of it was played);
        an empty ``heard`` removes it. False when the history has no exchange."""
        users = [i for i, m in enumerate(self.turns) if m.role == "user"]
        if not users:
            return False
        after = users[-1] + 1
        self.turns[after:] = [Message("assistant", heard)] if heard.strip() else []
        return True

    def context_for(self, user_text: str, now: datetime) -> Context:
        previous = next((m.content for m in reversed(self.turns) if m.role == "user"), None)
        grounding = ground(user_text, previous, now, turn=sum(m.role == "user" for m in self.turns))
        return Context(self.assistant_name, now, self.memory.ordered(), worked_sum(user_text), grounding)

    def messages_for(self, user_text: str, now: datetime) -> list[Message]:
        """System context + recent history + the new user message."""
        system = Message("system", self.context_for(user_text, now).system)
        return [system, *self.turns, Message("user", user_text)]

    def prompt_for(self, user_text: str, now: datetime) -> Prompt:
        """``messages_for`` as the reply model takes them, with the typed context (for the draft index)."""
        context = self.context_for(user_text, now)
        messages = [Message("system", context.system), *self.turns, Message("user", user_text)]
        return Prompt((m.as_dict() for m in messages), context)


class PromptTooLong(ValueError):
    """Even with no history and no user text, the prompt does not fit the model's context."""


@dataclass(frozen=True)
class PromptFit:
    """A prompt cut to the model's context: what was left out of it (the history itself keeps all)."""

    messages: list[dict[str, str]]
    tokens: int
    dropped_messages: int = 0  # history messages left out, oldest first
    cut_tokens: int = 0  # tokens cut from the start of the last message

    @property
    def trimmed(self) -> bool:
        return bool(self.dropped_messages or self.cut_tokens)


def fit_prompt(
    messages: Sequence[dict[str, str]],
    budget: int,
    count: Callable[[list[dict[str, str]]], int],
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
) -> PromptFit:
    """Make ``[system?, *history, last]`` fit ``budget`` tokens (``count``: a chat's token count).

    The oldest history goes first, a whole exchange at a time (the history never starts with a reply);
    if the system context and the last message alone are still too long, the last message keeps its
    end — the words said last, where a long message usually puts its question. One long message thus
    costs one turn's context, never the session: the next turn's prompt fits again."""
    context = messages.context if isinstance(messages, Prompt) else None  # kept for the draft index

    def prompt(ms: list[dict[str, str]]) -> Prompt:
        return Prompt(ms, context)

    msgs = [dict(m) for m in messages]
    n = count(msgs)
    if n <= budget or not msgs:
        return PromptFit(prompt(msgs), n)
    head = msgs[:1] if msgs[0]["role"] == "system" and len(msgs) > 1 else []
    history, last = msgs[len(head) : -1], msgs[-1]
    dropped = 0
    while history and n > budget:
        history.pop(0)
        dropped += 1
        while history and history[0]["role"] == "assistant":  # a reply without its question: drop it too
            history.pop(0)
            dropped += 1
        n = count([*head, *history, last])
    if n <= budget:
        return PromptFit(prompt([*head, *history, last]), n, dropped)
    ids = encode(last["content"])
    room = budget - count([*head, {**last, "content": ""}])
    while True:
        if room <= 0:
            raise PromptTooLong(f"a prompt of {count([*head, {**last, 'content': ''}])} tokens without any "
                                f"history or user text does not fit a budget of {budget} tokens")  # fmt: skip
        kept = ids[-room:]
        text = decode(kept)
        if len(kept) < len(ids) and " " in text.strip():
            text = text.strip().split(" ", 1)[1]  # the first word may be a fragment
        fitted = [*head, {**last, "content": text.strip()}]
        n = count(fitted)
        if n <= budget:
            return PromptFit(prompt(fitted), n, dropped, len(ids) - len(kept))
        room -= n - budget  # tokenisation at the joins is not exactly additive: shrink and retry
