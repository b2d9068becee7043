"""Tool calls by schema-constrained infilling, on the shipped embedded model (real weights, no mocks).

Whatever the model prefers, each slot can only yield what its schema allows: these tests hold for a
model never trained on calls as much as for one that was."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlm_core import DiffusionEngine
from dlm_core.tools import (
    CallFormat,
    Tool,
    ToolCall,
    ToolCaller,
    ToolCallError,
    ToolSchemaError,
    tool_slots,
    tools_sentence,
    validate_arguments,
    with_tools,
)

MODEL = Path(__file__).resolve().parents[2] / "agent" / "embedded" / "model"

TIMER = Tool(
    "set_timer",
    "Start a countdown timer. It rings when done.",
    {
        "type": "object",
        "properties": {
            "minutes": {"type": "integer", "minimum": 0, "maximum": 600},
            "name": {"type": "string"},
        },
        "required": ["minutes"],
    },
)
LIGHT = Tool(
    "set_light",
    "Switch or dim a light.",
    {
        "type": "object",
        "properties": {
            "device": {"type": "string", "enum": ["kitchen", "bedroom", "living_room"]},
            "state": {"type": "string", "enum": ["on", "off"]},
            "on_timer": {"type": "boolean"},
            "brightness": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        "required": ["device", "state"],
    },
)
NOTE = Tool(
    "add_note",
    "Write a note down.",
    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)
TOOLS = [TIMER, LIGHT, NOTE]
REQUESTS = [
    "set a pasta timer for 12 minutes",
    "turn the kitchen lights off please",
    "dim the bedroom lamp to 30 percent",
    "note that the plumber comes on Friday",
    "how are you today?",
]


def conversation(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Your name is Quinn."}, {"role": "user", "content": text}]


@pytest.fixture(scope="module")
def caller() -> ToolCaller:
    return ToolCaller(DiffusionEngine.from_pretrained(MODEL, max_context=512))


def test_prompt_sentence_lists_names_parameters_and_enums() -> None:
    sentence = tools_sentence(TOOLS)
    assert sentence.startswith("Tools: set_timer(minutes, name) Start a countdown timer;")
    assert "set_light(device: kitchen or bedroom or living_room, state: on or off," in sentence
    messages = with_tools(conversation("hi"), TOOLS)
    assert messages[0]["content"] == f"Your name is Quinn. {sentence}"
    assert with_tools([{"role": "user", "content": "hi"}], [NOTE])[0] == {
        "role": "system",
        "content": tools_sentence([NOTE]),
    }


def test_call_text_tokenises_to_the_skeleton(caller: ToolCaller) -> None:
    fmt = CallFormat(caller.engine.tokenizer, caller.engine.cfg.pad_token_id)
    width = fmt.name_width(TOOLS)
    cases = [
        (TIMER, {"minutes": 12, "name": "pasta"}),
        (TIMER, {"minutes": 0}),
        (LIGHT, {"device": "living_room", "state": "off", "on_timer": True, "brightness": 100}),
        (NOTE, {"text": "the plumber comes"}),
    ]
    for tool, args in cases:
        ids = fmt.call_ids(tool, args, width)
        assert caller.engine.tokenizer.encode(fmt.call_text(tool, args, width)) == ids
        skeleton, _ = fmt.layout(tool, width)
        assert len(ids) == len(skeleton)  # the same fixed positions, whatever the values
        assert [i for i, s in zip(ids, skeleton) if s is not None] == [s for s in skeleton if s is not None]


@pytest.mark.parametrize("text", REQUESTS)
def test_each_slot_yields_only_what_its_schema_allows(caller: ToolCaller, text: str) -> None:
    light = caller.decide(conversation(text), TOOLS, {"type": "function", "name": "set_light"})
    assert isinstance(light, ToolCall) and light.name == "set_light"
    assert light.arguments["device"] in ("kitchen", "bedroom", "living_room")
    assert light.arguments["state"] in ("on", "off")
    if "on_timer" in light.arguments:
        assert isinstance(light.arguments["on_timer"], bool)
    if "brightness" in light.arguments:
        b = light.arguments["brightness"]
        assert type(b) is int and 0 <= b <= 100
    timer = caller.decide(conversation(text), TOOLS, {"type": "function", "name": "set_timer"})
    assert timer is not None
    minutes = timer.arguments["minutes"]
    assert type(minutes) is int and 0 <= minutes <= 600
    words = text.split()
    if "name" in timer.arguments:  # a copied string is a whole-word span of the user's words
        name = timer.arguments["name"].split()
        assert any(words[i : i + len(name)] == name for i in range(len(words))), (name, words)
    note = caller.decide(conversation(text), TOOLS, {"type": "function", "name": "add_note"})
    assert note is not None
    copied = note.arguments["text"].split()  # required: never left out
    assert copied and any(words[i : i + len(copied)] == copied for i in range(len(words)))
    assert caller.last_trace["forwards"] == 1  # a named tool: one forward fills every slot


def test_tool_choice_none_required_and_named(caller: ToolCaller) -> None:
    messages = conversation("turn the kitchen lights off please")
    assert caller.decide(messages, TOOLS, "none") is None
    assert caller.last_trace["forwards"] == 0
    required = caller.decide(conversation("how are you today?"), TOOLS, "required")
    assert required is not None and required.name in {t.name for t in TOOLS}
    assert caller.last_trace["forwards"] == 2
    assert 0.0 <= required.confidence <= 1.0
    named = caller.decide(messages, TOOLS, {"type": "function", "name": "add_note"})
    assert named is not None and named.name == "add_note"
    chat_completions_shape = {"type": "function", "function": {"name": "set_timer"}}
    named = caller.decide(messages, TOOLS, chat_completions_shape)
    assert named is not None and named.name == "set_timer"
    assert caller.decide(messages, [], "auto") is None
    auto = caller.decide(messages, TOOLS, "auto")
    assert caller.last_trace["forwards"] in (1, 2)
    assert (auto is None) == (caller.last_trace["p_call"] < caller.call_threshold)


def test_bad_tool_choice_is_refused(caller: ToolCaller) -> None:
    messages = conversation("hello")
    with pytest.raises(ToolCallError, match="tool_choice must be"):
        caller.decide(messages, TOOLS, "sometimes")
    with pytest.raises(ToolCallError, match="'open_door'"):
        caller.decide(messages, TOOLS, {"type": "function", "name": "open_door"})
    with pytest.raises(ToolCallError, match="at least one tool"):
        caller.decide(messages, [], "required")
    with pytest.raises(ToolSchemaError, match="distinct"):
        caller.decide(messages, [TIMER, TIMER])


@pytest.mark.parametrize(
    ("properties", "construct"),
    [
        ({"where": {"type": "object", "properties": {}}}, "object"),
        ({"items": {"type": "array", "items": {"type": "string"}}}, "array"),
        ({"when": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}, "anyOf"),
        ({"code": {"type": "string", "pattern": "^[0-9]+$"}}, "pattern"),
        ({"maybe": {"type": ["string", "null"]}}, "type"),
        ({"level": {"type": "integer", "minimum": 5, "maximum": 1}}, "minimum 5 is above maximum 1"),
        ({"level": {"enum": []}}, "'enum' is empty"),
    ],
)
def test_unsupported_schema_names_the_construct(caller: ToolCaller, properties: dict, construct: str) -> None:
    tool = Tool("odd_tool", "Does odd things.", {"type": "object", "properties": properties})
    with pytest.raises(ToolSchemaError, match="odd_tool") as err:
        caller.decide(conversation("do the odd thing"), [tool])
    assert construct in str(err.value)


def test_schema_level_errors() -> None:
    with pytest.raises(ToolSchemaError, match="'oneOf'"):
        tool_slots(Tool("x", "", {"type": "object", "oneOf": []}))
    with pytest.raises(ToolSchemaError, match=r"required parameters \['b'\]"):
        tool_slots(Tool("x", "", {"type": "object", "properties": {}, "required": ["b"]}))
    with pytest.raises(ToolSchemaError, match="one word"):
        tool_slots(Tool("two words", ""))


def test_validate_arguments_names_the_problem() -> None:
    validate_arguments(LIGHT, {"device": "kitchen", "state": "on", "brightness": 40})
    with pytest.raises(ToolCallError, match="'state' is missing"):
        validate_arguments(LIGHT, {"device": "kitchen"})
    with pytest.raises(ToolCallError, match="'device'='garage'"):
        validate_arguments(LIGHT, {"device": "garage", "state": "on"})
    with pytest.raises(ToolCallError, match="'brightness'=101"):
        validate_arguments(LIGHT, {"device": "kitchen", "state": "on", "brightness": 101})
    with pytest.raises(ToolCallError, match="unknown argument 'colour'"):
        validate_arguments(LIGHT, {"device": "kitchen", "state": "on", "colour": "red"})
