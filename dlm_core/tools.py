"""Tool calls for a diffusion LM: decide "speak or call", then fill a call's arguments by
schema-constrained infilling (the skeleton is fixed, each slot is decoded under its constraint).

This module holds the types every consumer shares (the agent's skills, the Realtime server); the
decoder that fills them lives beside them (``ToolCaller``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .errors import GenerationError

if TYPE_CHECKING:
    from .engine import DiffusionEngine
    from .tokenizer import ChatTokenizer


class ToolSchemaError(GenerationError):
    """A tool's definition cannot be decoded under constraints (an unsupported JSON-schema construct)."""


@dataclass(frozen=True)
class Tool:
    """One callable tool: a name, what it does, and its parameters as a JSON-schema object
    (``{"type": "object", "properties": {...}, "required": [...]}``) — the shape OpenAI's function
    tools use."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """A decided call: the tool's name and its arguments (valid for the tool's schema by construction)."""

    name: str
    arguments: Mapping[str, Any]
    confidence: float = 1.0  # the decoder's probability for "call this tool" (for traces and gates)

    def arguments_json(self) -> str:
        return json.dumps(dict(self.arguments), ensure_ascii=False, separators=(",", ":"))


class ToolCallError(GenerationError):
    """A call request cannot be served: a bad ``tool_choice``, or arguments that fail their schema."""


# -- the prompt: one compact sentence appended to the system message -------------------------------
TOOLS_PREFIX = "Tools:"
_DESCRIPTION_WORDS = 8  # a one-line description: the context holds 512 tokens (256 in training)


def _short_description(text: str) -> str:
    first = text.strip().split(". ")[0].strip().rstrip(".")
    words = first.split()
    return " ".join(words[:_DESCRIPTION_WORDS])


def _param_phrase(key: str, schema: Mapping[str, Any]) -> str:
    values = schema.get("enum")
    if values:  # the values are in the prompt, each after a space, so the model can copy them
        texts = [_value_text(v) for v in values]
        return f"{key}: {' or '.join(texts)}"
    return key


def tools_sentence(tools: Sequence[Tool]) -> str:
    """The tool list as the model reads it: ``Tools: set_timer(minutes, name) starts a timer; ...``.

    Names, a one-line description, parameter names and enum values: nothing else (the context is
    small). The training data and serving both use this function, so they cannot drift apart."""
    parts = []
    for tool in tools:
        props = tool.parameters.get("properties", {}) or {}
        params = ", ".join(_param_phrase(k, v) for k, v in props.items())
        desc = _short_description(tool.description)
        parts.append(f"{tool.name}({params})" + (f" {desc}" if desc else ""))
    return f"{TOOLS_PREFIX} " + "; ".join(parts) + "."


def with_tools(messages: Sequence[Mapping[str, str]], tools: Sequence[Tool]) -> list[dict[str, str]]:
    """``messages`` with the tool sentence appended to the system message (one is added first when
    there is none). No tools: the messages unchanged."""
    out = [dict(m) for m in messages]
    if not tools:
        return out
    sentence = tools_sentence(tools)
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content'].strip()} {sentence}".strip()
    else:
        out.insert(0, {"role": "system", "content": sentence})
    return out


# -- the call's skeleton: fixed positions, each slot a fixed width -----------------------------------
CALL_MARK = "{"  # a call reply starts with this token; speech never does
INTEGER_LIMITS = (-999, 9999)  # an integer without bounds is one of these (5 positions: " -999", " 9999")
NUMBER_WIDTH = 8  # " " + sign, digits and one point
STRING_WIDTH = 6  # a copied or free string: at most this many tokens
_SLOT_KEYS = {"type", "description", "enum", "minimum", "maximum", "default", "title", "x-copy", "examples"}
_TOP_KEYS = {"type", "properties", "required", "additionalProperties", "description", "title"}
_TYPES = {"string", "integer", "number", "boolean"}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


@dataclass(frozen=True)
class Slot:
    """One parameter's place in a call: how it is decoded and how many positions it takes.

    kind: ``enum`` (one of ``values``; booleans are the enum true/false), ``integer`` (whole numbers in
    [minimum, maximum]), ``number`` (digits, sign and point), ``copy`` (a span of the user's words),
    ``text`` (free words, the schema's ``"x-copy": false``)."""

    key: str
    kind: str
    required: bool
    values: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


def tool_slots(tool: Tool) -> list[Slot]:
    """The slots of ``tool``'s parameters in schema order; ``ToolSchemaError`` names any construct the
    constrained decoder cannot fill (nested objects, arrays, unions, patterns, ...)."""
    if not tool.name or not tool.name.strip() or any(c.isspace() for c in tool.name):
        raise ToolSchemaError(f"tool name {tool.name!r} must be one word without spaces")
    schema = tool.parameters or {}
    where = f"tool {tool.name!r}"
    for key in schema:
        if key not in _TOP_KEYS:
            raise ToolSchemaError(f"{where}: the parameters schema uses {key!r}, which is not supported")
    if schema.get("type", "object") != "object":
        raise ToolSchemaError(
            f"{where}: parameters must be an object schema, got type {schema.get('type')!r}"
        )
    props = schema.get("properties", {}) or {}
    if not isinstance(props, Mapping):
        raise ToolSchemaError(f"{where}: 'properties' must be an object")
    required = set(schema.get("required", []) or [])
    unknown = required - set(props)
    if unknown:
        raise ToolSchemaError(f"{where}: required parameters {sorted(unknown)} are not in 'properties'")
    slots = []
    for key, prop in props.items():
        if not key or any(c.isspace() for c in key):
            raise ToolSchemaError(f"{where}: parameter name {key!r} must be one word without spaces")
        slots.append(_slot(where, key, prop, key in required))
    return slots


def _slot(where: str, key: str, prop: Any, required: bool) -> Slot:
    where = f"{where}, parameter {key!r}"
    if not isinstance(prop, Mapping):
        raise ToolSchemaError(f"{where}: its schema must be an object")
    kind = prop.get("type")
    if isinstance(kind, str) and kind not in _TYPES:  # nested objects, arrays, null
        raise ToolSchemaError(f"{where}: type {kind!r} is not supported (only {sorted(_TYPES)})")
    for k in prop:
        if k not in _SLOT_KEYS:
            raise ToolSchemaError(f"{where}: {k!r} is not supported (only {sorted(_SLOT_KEYS)})")
    if "enum" in prop:
        values = tuple(prop["enum"])
        if not values:
            raise ToolSchemaError(f"{where}: 'enum' is empty")
        for v in values:
            if not isinstance(v, (str, int, float)) or (isinstance(v, str) and not v.strip()):
                raise ToolSchemaError(f"{where}: enum value {v!r} is not a non-empty string or a number")
        if len({_value_text(v) for v in values}) != len(values):
            raise ToolSchemaError(f"{where}: enum values must be distinct as text")
        return Slot(key, "enum", required, values)
    if not isinstance(kind, str):
        raise ToolSchemaError(f"{where}: 'type' must be one of {sorted(_TYPES)}, got {kind!r}")
    if kind not in _TYPES:
        raise ToolSchemaError(f"{where}: type {kind!r} is not supported (only {sorted(_TYPES)})")
    if kind == "boolean":
        return Slot(key, "enum", required, (True, False))
    if kind == "string":
        return Slot(key, "copy" if prop.get("x-copy", True) else "text", required)
    lo, hi = prop.get("minimum"), prop.get("maximum")
    for name, bound in (("minimum", lo), ("maximum", hi)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
            raise ToolSchemaError(f"{where}: {name} must be a number, got {bound!r}")
    if lo is not None and hi is not None and lo > hi:
        raise ToolSchemaError(f"{where}: minimum {lo} is above maximum {hi}")
    return Slot(key, kind, required, minimum=lo, maximum=hi)


def integer_range(slot: Slot) -> tuple[int, int]:
    """The integers an integer slot chooses from (its bounds, within ``INTEGER_LIMITS``)."""
    import math

    lo = INTEGER_LIMITS[0] if slot.minimum is None else max(INTEGER_LIMITS[0], math.ceil(slot.minimum))
    hi = INTEGER_LIMITS[1] if slot.maximum is None else min(INTEGER_LIMITS[1], math.floor(slot.maximum))
    if lo > hi:
        raise ToolSchemaError(f"parameter {slot.key!r}: no integer lies in [{slot.minimum}, {slot.maximum}]")
    return lo, hi


def validate_arguments(tool: Tool, arguments: Mapping[str, Any]) -> None:
    """Check decoded arguments against ``tool``'s schema (they are valid by construction: this guards
    the construction). ``ToolCallError`` names the first problem."""
    slots = {s.key: s for s in tool_slots(tool)}
    for key in arguments:
        if key not in slots:
            raise ToolCallError(f"{tool.name}: unknown argument {key!r}")
    for key, slot in slots.items():
        if key not in arguments:
            if slot.required:
                raise ToolCallError(f"{tool.name}: required argument {key!r} is missing")
            continue
        v = arguments[key]
        bad = False
        if slot.kind == "enum":
            bad = not any(type(v) is type(c) and v == c for c in slot.values)
        elif slot.kind == "integer":
            bad = isinstance(v, bool) or not isinstance(v, int)
        elif slot.kind == "number":
            bad = isinstance(v, bool) or not isinstance(v, (int, float))
        else:
            bad = not isinstance(v, str) or not v
        if not bad and slot.kind in ("integer", "number"):
            bad = (slot.minimum is not None and v < slot.minimum) or (
                slot.maximum is not None and v > slot.maximum
            )
        if bad:
            raise ToolCallError(f"{tool.name}: argument {key!r}={v!r} does not fit its schema ({slot.kind})")


class CallFormat:
    """The token layout of a call reply, shared by the training data and the decoder.

    ``{`` · the tool's name · then, per parameter in schema order, its name and its value slot. Every
    slot (the tool name's too) has a fixed width that the schema alone decides, filled up with the
    pad token after its value (an optional parameter left out is all pads), so the skeleton of a tool
    — where every key and every slot sits — is known before anything is decoded. Each part starts
    with a space, so a byte-level BPE tokenises the parts the same whether alone or joined.
    """

    def __init__(self, tokenizer: ChatTokenizer, pad_id: int) -> None:
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        mark = tokenizer.encode(CALL_MARK)
        if len(mark) != 1:
            raise ToolSchemaError(f"the tokenizer has no single token for the call mark {CALL_MARK!r}")
        self.mark_id = mark[0]
        self._numbers: dict[tuple[str, int, int], tuple[list[Any], Tensor]] = {}

    def words(self, text: str) -> list[int]:
        return self.tokenizer.encode(" " + text)

    def name_width(self, tools: Sequence[Tool]) -> int:
        return max(len(self.words(t.name)) for t in tools)

    def padded(self, ids: Sequence[int], width: int) -> list[int]:
        return list(ids) + [self.pad_id] * (width - len(ids))

    def number_candidates(self, slot: Slot) -> tuple[list[Any], Tensor]:
        """(values, [N, W] token ids padded to the slot width) of an integer or number slot: every
        integer in range, for a number every tenth (built once per range)."""
        lo, hi = integer_range(slot)
        key = (slot.kind, lo, hi)
        if key not in self._numbers:
            if slot.kind == "integer":
                values: list[Any] = list(range(lo, hi + 1))
            else:
                values = [n / 10 for n in range(lo * 10, hi * 10 + 1)]
                values = [v for v in values if slot.minimum is None or v >= slot.minimum]
                values = [v for v in values if slot.maximum is None or v <= slot.maximum]
            texts = [" " + _value_text(v) for v in values]
            enc = [e.ids for e in self.tokenizer.tokenizer.encode_batch(texts, add_special_tokens=False)]
            width = max(len(e) for e in enc)
            ids = torch.tensor([self.padded(e, width) for e in enc], dtype=torch.long)
            self._numbers[key] = (values, ids)
        return self._numbers[key]

    def slot_width(self, slot: Slot) -> int:
        if slot.kind == "enum":
            return max(len(self.words(_value_text(v))) for v in slot.values)
        if slot.kind in ("integer", "number"):
            return int(self.number_candidates(slot)[1].shape[1])
        return STRING_WIDTH

    def layout(self, tool: Tool, name_width: int) -> tuple[list[int | None], list[tuple[Slot, int, int]]]:
        """(the skeleton: token ids, None where a value is decoded; each slot with its [start, end))."""
        name = self.words(tool.name)
        if len(name) > name_width:
            raise ToolSchemaError(f"tool {tool.name!r} is longer than the name slot ({name_width} tokens)")
        ids: list[int | None] = [self.mark_id, *self.padded(name, name_width)]
        spans = []
        for slot in tool_slots(tool):
            ids.extend(self.words(slot.key))
            width = self.slot_width(slot)
            spans.append((slot, len(ids), len(ids) + width))
            ids.extend([None] * width)
        return ids, spans

    def value_ids(self, slot: Slot, value: Any) -> list[int]:
        return [] if value is None else self.words(_value_text(value))

    def call_ids(self, tool: Tool, arguments: Mapping[str, Any], name_width: int) -> list[int]:
        """The whole call reply as token ids (what the decoder's skeleton becomes once filled)."""
        ids, spans = self.layout(tool, name_width)
        for slot, start, end in spans:
            value = self.value_ids(slot, arguments.get(slot.key))
            if len(value) > end - start:
                raise ToolCallError(
                    f"{tool.name}: {slot.key}={arguments[slot.key]!r} is longer than its slot"
                )
            ids[start:end] = self.padded(value, end - start)
        return [int(i) for i in ids if i is not None]

    def call_text(self, tool: Tool, arguments: Mapping[str, Any], name_width: int) -> str:
        """The call reply as text (training targets): tokenises to ``call_ids``."""
        pad = self.tokenizer.tokenizer.id_to_token(self.pad_id)
        name = self.words(tool.name)
        parts = [CALL_MARK, " " + tool.name, pad * (name_width - len(name))]
        for slot in tool_slots(tool):
            value = arguments.get(slot.key)
            ids = self.value_ids(slot, value)
            parts.append(" " + slot.key)
            if value is not None:
                parts.append(" " + _value_text(value))
            parts.append(pad * (self.slot_width(slot) - len(ids)))
        return "".join(parts)


ToolChoice = str | Mapping[str, Any]
_LOG_FLOOR = -50.0  # a candidate token the model cannot produce scores this low, not -inf


class ToolCaller:
    """Decide "speak or call" and fill a call by schema-constrained infilling, on a ``DiffusionEngine``.

    Cost, after the prompt (tool list included) is prefilled: one forward of a fully masked block —
    its first position says call (the ``{`` mark) or speech, its next positions score the tool names —
    and one forward of the chosen tool's skeleton with every value slot masked, in which each slot
    scores its own candidates (enum values, integers in range, spans of the user's words, or "left
    out") as token sequences. Two forwards, whatever the number of tools or parameters.

    The prompt is ``with_tools(messages, tools)``: prefill ``prompt_ids(messages, tools)`` while the
    user speaks, and when ``decide`` returns None, generate the spoken reply from the same messages
    (banning ``speech_banned_ids`` so speech never starts a call).
    """

    def __init__(
        self, engine: DiffusionEngine, *, call_threshold: float = 0.5, name_pass: bool = False
    ) -> None:
        """``name_pass``: score the tool names in a forward of their own, the call mark fixed at
        position 0 (names conditioned on "this is a call"), instead of in the first forward's
        fully masked block: one forward more per call."""
        if not 0.0 < call_threshold <= 1.0:
            raise ToolCallError(f"call_threshold must be in (0, 1], got {call_threshold}")
        self.engine = engine
        self.call_threshold = call_threshold
        self.name_pass = name_pass
        self.format = CallFormat(engine.tokenizer, engine.cfg.pad_token_id)
        self.last_trace: dict[str, Any] = {}

    @property
    def speech_banned_ids(self) -> tuple[int, ...]:
        return (self.format.mark_id,)

    def prompt_ids(self, messages: Sequence[Mapping[str, str]], tools: Sequence[Tool]) -> list[int]:
        return self.engine.tokenizer.encode_chat(with_tools(messages, tools), add_generation_prompt=True)

    def decide(
        self,
        messages: Sequence[Mapping[str, str]],
        tools: Sequence[Tool],
        tool_choice: ToolChoice = "auto",
    ) -> ToolCall | None:
        """The call to make, or None to speak. ``tool_choice``: "auto" (the model decides), "none"
        (never call), "required" (call one of ``tools``), or ``{"type": "function", "name": ...}``
        (call that tool). Bad schemas raise ``ToolSchemaError``, a bad choice ``ToolCallError``."""
        t0 = time.perf_counter()
        tools = list(tools)
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ToolSchemaError(f"tool names must be distinct, got {names}")
        for tool in tools:
            tool_slots(tool)
        choice = self._choice(tool_choice, tools)
        self.last_trace = {"choice": choice, "forwards": 0}
        if choice == "none" or (choice == "auto" and not tools):
            return None
        prompt = self.prompt_ids(messages, tools)
        width = self.format.name_width(tools)
        block_len = self.engine.block_len
        if 1 + width >= block_len:
            raise ToolSchemaError(f"tool names of {width} tokens do not fit a block of {block_len}")
        if choice in ("auto", "required"):
            lp = self._forward(prompt, [self.engine.cfg.mask_token_id] * block_len)
            p_call = float(lp[0, self.format.mark_id].exp())
            self.last_trace["p_call"] = p_call
            if choice == "auto" and p_call < self.call_threshold:
                self.last_trace["ms"] = (time.perf_counter() - t0) * 1e3
                return None
            if self.name_pass:
                block = [self.engine.cfg.mask_token_id] * block_len
                lp = self._forward(prompt, [self.format.mark_id, *block[1:]])
            cands = torch.tensor([self.format.padded(self.format.words(n), width) for n in names])
            scores = _sequence_scores(lp[1 : 1 + width], cands)
            probs = torch.softmax(scores, dim=0)
            best = int(scores.argmax())
            tool = tools[best]
            confidence = float(probs[best]) * (p_call if choice == "auto" else 1.0)
        else:
            tool = next(t for t in tools if t.name == choice)
            confidence = 1.0
        arguments = self._fill(prompt, tool, width, messages)
        validate_arguments(tool, arguments)
        self.last_trace["ms"] = (time.perf_counter() - t0) * 1e3
        return ToolCall(tool.name, arguments, confidence)

    # -- internals ---------------------------------------------------------------------------------
    def _choice(self, tool_choice: ToolChoice, tools: list[Tool]) -> str:
        if isinstance(tool_choice, str):
            if tool_choice not in ("auto", "none", "required"):
                raise ToolCallError(
                    f'tool_choice must be "auto", "none", "required" or {{"type": "function", "name": ...}}, '
                    f"got {tool_choice!r}"
                )
            if tool_choice == "required" and not tools:
                raise ToolCallError('tool_choice "required" needs at least one tool')
            return tool_choice
        if isinstance(tool_choice, Mapping) and tool_choice.get("type") == "function":
            name = tool_choice.get("name")
            if name is None and isinstance(tool_choice.get("function"), Mapping):  # Chat Completions shape
                name = tool_choice["function"].get("name")
            if name not in {t.name for t in tools}:
                raise ToolCallError(f"tool_choice names {name!r}, which is not one of the tools given")
            return str(name)
        raise ToolCallError(f"tool_choice {tool_choice!r} is not understood")

    def _forward(self, prompt: list[int], block: list[int]) -> Tensor:
        self.last_trace["forwards"] = self.last_trace.get("forwards", 0) + 1
        return self.engine.block_log_probs(prompt, block).clamp(min=_LOG_FLOOR)

    def _fill(
        self, prompt: list[int], tool: Tool, width: int, messages: Sequence[Mapping[str, str]]
    ) -> dict[str, Any]:
        skeleton, spans = self.format.layout(tool, width)
        cfg = self.engine.cfg
        block_len = self.engine.block_len
        if len(skeleton) + 1 > block_len:
            raise ToolSchemaError(
                f"tool {tool.name!r}: its call takes {len(skeleton) + 1} tokens but a block holds {block_len}; "
                "use fewer parameters or shorter enum values"
            )
        if not spans:
            return {}
        eos = cfg.eos_token_ids[0] if cfg.eos_token_ids else cfg.pad_token_id
        block = [cfg.mask_token_id if i is None else i for i in skeleton]
        block = block + [eos] + [cfg.pad_token_id] * (block_len - len(block) - 1)
        lp = self._forward(prompt, block)
        user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        arguments: dict[str, Any] = {}
        for slot, start, end in spans:
            value = self._slot_value(slot, lp[start:end], user)
            if value is not None:
                arguments[slot.key] = value
        return arguments

    def _slot_value(self, slot: Slot, lp: Tensor, user: str) -> Any:
        """One slot's value from its positions' log-probabilities [W, V]; None = left out."""
        fmt, width = self.format, lp.shape[0]
        values: list[Any]
        if slot.kind == "enum":
            values = list(slot.values)
            cands = torch.tensor([fmt.padded(fmt.value_ids(slot, v), width) for v in values])
        elif slot.kind in ("integer", "number"):
            values, cands = fmt.number_candidates(slot)
        elif slot.kind == "copy":
            values, rows = self._spans(user, width)
            if not values:
                return self._free_text(lp) if slot.required else None
            cands = torch.tensor(rows)
        else:
            return self._free_text(lp) or (None if not slot.required else "")
        if not slot.required:  # "left out": every position a pad
            values = [*values, None]
            cands = torch.cat([cands, torch.full((1, width), fmt.pad_id, dtype=torch.long)])
        scores = _sequence_scores(lp, cands)
        return values[int(scores.argmax())]

    def _spans(self, user: str, width: int) -> tuple[list[str], list[list[int]]]:
        """Whole-word spans of the user's words of at most ``width`` tokens: (texts, padded ids)."""
        ids = self.format.words(user.strip()) if user.strip() else []
        texts = self.engine.token_texts
        starts = [texts[i][:1] == " " and texts[i].strip()[:1].isalnum() for i in ids]
        continues = [not texts[i][:1].isspace() and texts[i][:1].isalnum() for i in ids]
        values, rows = [], []
        for i in range(len(ids)):
            if not starts[i]:
                continue
            for j in range(i + 1, min(len(ids), i + width) + 1):
                if j < len(ids) and continues[j]:
                    continue  # a span ends where a word ends
                text = self.engine.tokenizer.decode(ids[i:j]).strip().rstrip(".,!?;:")
                if text and text not in values:
                    values.append(text)
                    rows.append(self.format.padded(self.format.words(text), width))
        keep = [k for k, r in enumerate(rows) if len(r) == width]  # trimming punctuation never lengthens
        return [values[k] for k in keep], [rows[k] for k in keep]

    def _free_text(self, lp: Tensor) -> str:
        """Free words (``"x-copy": false``): the likeliest output token at each position up to a pad."""
        cfg = self.engine.cfg
        allowed = torch.full((lp.shape[1],), float("-inf"))
        out = list(cfg.output_token_ids) or range(lp.shape[1])
        allowed[list(out)] = 0.0
        for special in (cfg.mask_token_id, *cfg.eos_token_ids):
            allowed[special] = float("-inf")
        allowed[cfg.pad_token_id] = 0.0
        ids = []
        for row in lp + allowed:
            tid = int(row.argmax())
            if tid == cfg.pad_token_id:
                break
            ids.append(tid)
        return self.engine.tokenizer.decode(ids).strip()


def _sequence_scores(lp: Tensor, cands: Tensor) -> Tensor:
    """[N] summed log-probabilities of candidate token sequences [N, W] at positions lp [W, V]."""
    width = cands.shape[1]
    return lp[torch.arange(width)[None, :], cands].sum(dim=1)
