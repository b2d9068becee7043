"""Realtime function calling, sans-I/O: tools and tool_choice in session.update / response.create, a call
decided by the pipeline (its real ``ToolCallDecided`` event) becoming a ``function_call`` output item, and
the client's ``function_call_output`` answered by a spoken reply. Every server event is checked against
the official ``openai`` SDK's GA types (pydantic validation, not just field names).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pydantic
import pytest
from openai.types.realtime import RealtimeServerEvent

from agent.events import (
    EndpointCommitted,
    FinalTranscript,
    LatencyReport,
    SpeculationDiscarded,
    SpeechStarted,
    StageError,
    ToolCallDecided,
)
from agent.realtime.protocol import (
    MAX_TOOLS,
    FunctionOutputCreate,
    RealtimeProtocolError,
    ResponseCreate,
    encode,
    parse_client_event,
)
from agent.realtime.session import MAX_CALLS_KEPT, RealtimeSession, ServerDefaults, SetTools, StartReply
from agent.tool_calls import MAX_RESULT_CHARS, ToolRequest, schema_checker, spoken_result
from dlm_core.tools import Tool, ToolSchemaError

DEFAULTS = ServerDefaults(voice="en_US-joe-medium")
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather now in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city"],
    },
}
TIMER = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown timer.",
    "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]},
}
SERVER_EVENT = pydantic.TypeAdapter(RealtimeServerEvent)


def msg(**event) -> str:
    return json.dumps(event)


def session_update(**session) -> str:
    return msg(type="session.update", session={"type": "realtime", **session})


def text_item(text: str) -> str:
    return msg(
        type="conversation.item.create",
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    )


def output_item(call_id: str, output: str, **extra) -> str:
    return msg(
        type="conversation.item.create",
        item={"type": "function_call_output", "call_id": call_id, "output": output, **extra},
    )


def types(events: list) -> list[str]:
    return [e["type"] for e in events]


def code(out: list) -> str:
    (err,) = out
    assert err["type"] == "error", err
    return err["error"]["code"]


def sdk_valid(events: list[dict]) -> None:
    """Every standard server event validates as the SDK's type (our own quickturn.* ones are extras)."""
    for event in events:
        json.loads(encode(event))
        if not event["type"].startswith("quickturn."):
            SERVER_EVENT.validate_python(event)


def fails(raw: str, code: str) -> RealtimeProtocolError:
    with pytest.raises(RealtimeProtocolError) as info:
        parse_client_event(raw)
    assert info.value.code == code, info.value.message
    return info.value


def with_tools(choice: object = "auto") -> RealtimeSession:
    s = RealtimeSession(DEFAULTS)
    out = s.receive(session_update(tools=[WEATHER, TIMER], tool_choice=choice), busy=False)
    assert types([o for o in out if isinstance(o, dict)]) == ["session.updated"], out
    return s


def typed_call(s: RealtimeSession, text: str, name: str, arguments: dict, turn: int = 1) -> list[dict]:
    """A typed request answered by a call: the session's StartReply, then the pipeline's events for it."""
    s.receive(text_item(text), busy=False)
    (start,) = s.receive(msg(type="response.create"), busy=False)
    assert isinstance(start, StartReply) and start.tools is not None
    created = s.begin_response(turn, start.user_item_id)
    events = s.on_pipeline_event(ToolCallDecided(turn, 1.0, name, json.dumps(arguments), text))
    assert events == []  # the call is sent with the response, when the turn ends
    return created + s.on_pipeline_event(LatencyReport(turn, 2.0, text, ""))


# -- parsing ------------------------------------------------------------------------------------------
def test_tools_and_tool_choice_parse_into_tool_values():
    ev = parse_client_event(session_update(tools=[WEATHER, TIMER], tool_choice="required"))
    assert ev.patch.tools == (
        Tool("get_weather", "The weather now in a city.", WEATHER["parameters"]),
        Tool("set_timer", "Start a countdown timer.", TIMER["parameters"]),
    )
    assert ev.patch.tool_choice == "required"
    named = parse_client_event(session_update(tool_choice={"type": "function", "name": "set_timer"}))
    assert named.patch.tool_choice == {"type": "function", "name": "set_timer"}
    bare = parse_client_event(session_update(tools=[{"name": "ping"}]))  # type and parameters may be left out
    assert bare.patch.tools == (Tool("ping", "", {"type": "object", "properties": {}}),)
    create = parse_client_event(
        msg(type="response.create", response={"tools": [TIMER], "tool_choice": "none"})
    )
    assert isinstance(create, ResponseCreate) and [t.name for t in create.tools] == ["set_timer"]
    assert create.tool_choice == "none"
    out = parse_client_event(output_item("call_1", '{"temp_c": 18}', id="item_out"))
    assert out == FunctionOutputCreate(None, "call_1", '{"temp_c": 18}', "item_out")


@pytest.mark.parametrize(
    ("session", "expected", "param"),
    [
        ({"tools": {"name": "f"}}, "invalid_type", "session.tools"),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "unsupported_value", "session.tools[0].type"),
        ({"tools": [{"type": "code", "name": "f"}]}, "invalid_value", "session.tools[0].type"),
        ({"tools": [{"type": "function"}]}, "missing_required_parameter", "session.tools[0].name"),
        ({"tools": [{"name": "get weather"}]}, "invalid_value", "session.tools[0].name"),
        ({"tools": [{"name": "f"}, {"name": "f"}]}, "duplicate_tool_name", "session.tools[1].name"),
        ({"tools": [{"name": "f", "colour": 1}]}, "unknown_parameter", "session.tools[0].colour"),
        ({"tools": [{"name": "f", "description": 7}]}, "invalid_type", "session.tools[0].description"),
        ({"tools": [{"name": "f", "parameters": []}]}, "invalid_type", "session.tools[0].parameters"),
        ({"tools": [{"name": "f", "parameters": {"type": "string"}}]}, "invalid_value",
         "session.tools[0].parameters.type"),
        ({"tools": [{"name": "f", "parameters": {"properties": {"n": {"type": "int"}}}}]}, "invalid_value",
         "session.tools[0].parameters.properties.n.type"),
        ({"tools": [{"name": "f", "parameters": {"properties": {"u": {"enum": []}}}}]}, "invalid_value",
         "session.tools[0].parameters.properties.u.enum"),
        ({"tools": [{"name": "f", "parameters": {"properties": {}, "required": ["city"]}}]}, "invalid_value",
         "session.tools[0].parameters.required"),
        ({"tools": [{"name": f"f{i}"} for i in range(MAX_TOOLS + 1)]}, "array_above_max_length",
         "session.tools"),
        ({"tool_choice": "always"}, "invalid_value", "session.tool_choice"),
        ({"tool_choice": {"type": "function"}}, "missing_required_parameter", "session.tool_choice.name"),
        ({"tool_choice": {"type": "mcp", "server_label": "x"}}, "unsupported_value",
         "session.tool_choice.type"),
    ],
)  # fmt: skip
def test_bad_tools_get_short_named_errors(session: dict, expected: str, param: str):
    err = fails(session_update(**session), expected)
    assert err.param == param and len(err.message) < 300, err.message


def test_bad_function_outputs_get_named_errors():
    fails(output_item("call_1", 42), "invalid_type")
    err = fails(msg(type="conversation.item.create", item={"type": "function_call_output", "output": "x"}),
                "missing_required_parameter")  # fmt: skip
    assert err.param == "item.call_id"
    call = {"type": "function_call", "name": "f", "call_id": "c", "arguments": "{}"}
    assert "function_call_output" in fails(msg(type="conversation.item.create", item=call),
                                           "unsupported_value").message  # fmt: skip
    fails(output_item("call_1", "ok", role="user"), "unknown_parameter")


# -- session ------------------------------------------------------------------------------------------
def test_session_update_reports_tools_and_tells_the_pipeline():
    s = RealtimeSession(DEFAULTS)
    assert (
        s.session_created()["session"]["tools"] == []
        and s.session_created()["session"]["tool_choice"] == "auto"
    )
    out = s.receive(
        session_update(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False), busy=False
    )
    set_tools, updated = out
    assert set_tools == SetTools(ToolRequest((Tool("get_weather", WEATHER["description"], WEATHER["parameters"]),),
                                             "required"))  # fmt: skip
    assert updated["session"]["tools"] == [WEATHER] and updated["session"]["tool_choice"] == "required"
    sdk_valid([s.session_created(), updated])
    # The same tools again: nothing for the pipeline to change.
    assert types(s.receive(session_update(tools=[WEATHER]), busy=False)) == ["session.updated"]
    # tool_choice "none" keeps the tools declared but offers them to no turn.
    (set_none, _) = s.receive(session_update(tool_choice="none"), busy=False)
    assert set_none.request.tools and not set_none.request.offered


def test_tool_choice_must_fit_the_tools():
    s = RealtimeSession(DEFAULTS)
    err = s.receive(session_update(tool_choice="required"), busy=False)[0]["error"]
    assert err["code"] == "invalid_value" and "no tools" in err["message"]
    named = {"type": "function", "name": "get_weather"}
    err = s.receive(session_update(tools=[TIMER], tool_choice=named), busy=False)[0]["error"]
    assert err["param"] == "session.tool_choice.name" and "get_weather" in err["message"]
    assert s.config.tools == ()  # a refused update changes nothing
    s.receive(session_update(tools=[WEATHER, TIMER], tool_choice=named), busy=False)
    assert code(s.receive(session_update(tools=[TIMER]), busy=False)) == "invalid_value"  # would orphan it
    s.receive(text_item("Hi"), busy=False)
    bad = msg(type="response.create", response={"tool_choice": {"type": "function", "name": "nope"}})
    assert code(s.receive(bad, busy=False)) == "invalid_value"


def test_a_server_without_a_tool_caller_refuses_tools_clearly():
    s = RealtimeSession(ServerDefaults(tool_calls=False))
    err = s.receive(session_update(tools=[WEATHER]), busy=False)[0]["error"]
    assert err["code"] == "tools_not_supported" and "tool caller" in err["message"]
    assert types(s.receive(session_update(tools=[]), busy=False)) == ["session.updated"]  # none is fine


def test_response_create_offers_the_sessions_tools_or_its_own():
    s = with_tools()
    s.receive(text_item("Set a timer for ten minutes"), busy=False)
    (start,) = s.receive(msg(type="response.create"), busy=False)
    assert start.tools == s.config.tool_request and start.say is None
    s.begin_response(1, start.user_item_id)
    s.on_pipeline_event(LatencyReport(1, 1.0, "Set a timer for ten minutes", "Okay."))
    s.receive(text_item("And one for five"), busy=False)
    only_timer = msg(type="response.create", response={"tools": [TIMER], "tool_choice": "required"})
    (start,) = s.receive(only_timer, busy=False)
    assert [t.name for t in start.tools.tools] == ["set_timer"] and start.tools.choice == "required"
    s.begin_response(2, start.user_item_id)
    s.on_pipeline_event(LatencyReport(2, 2.0, "And one for five", "Okay."))
    s.receive(text_item("Hello"), busy=False)
    (start,) = s.receive(msg(type="response.create", response={"tool_choice": "none"}), busy=False)
    assert start.tools is None  # nothing to decide: the reply speaks


def test_a_decided_call_is_a_function_call_item_with_ga_events():
    s = with_tools()
    out = typed_call(s, "What's the weather in Paris?", "get_weather", {"city": "Paris"})
    sdk_valid(out)
    assert types(out) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "quickturn.latency",
    ]
    created, added, conv_added, delta, done, item_done, conv_done, response_done, _ = out
    rid = created["response"]["id"]
    item = item_done["item"]
    assert item["type"] == "function_call" and item["name"] == "get_weather" and item["status"] == "completed"
    assert json.loads(item["arguments"]) == {"city": "Paris"} and item["call_id"].startswith("call_")
    assert added["item"]["status"] == "in_progress" and added["item"]["arguments"] == ""
    assert conv_added["item"]["id"] == item["id"] and conv_done["item"] == item
    for e in (delta, done):
        assert (e["response_id"], e["item_id"], e["call_id"], e["output_index"]) == (
            rid,
            item["id"],
            item["call_id"],
            0,
        )
    assert delta["delta"] == done["arguments"] == item["arguments"] and done["name"] == "get_weather"
    assert response_done["response"]["status"] == "completed" and response_done["response"]["output"] == [
        item
    ]
    # No audio item: a call says nothing itself.
    assert not any(e["type"].startswith("response.output_audio") for e in out)


def test_a_function_output_is_answered_by_a_spoken_reply_that_uses_it():
    s = with_tools()
    out = typed_call(s, "What's the weather in Paris?", "get_weather", {"city": "Paris"})
    call_item = next(e["item"] for e in out if e["type"] == "response.output_item.done")
    added = s.receive(output_item(call_item["call_id"], '{"temp_c": 18, "sky": "sunny"}'), busy=False)
    sdk_valid(added)
    assert types(added) == ["conversation.item.added", "conversation.item.done"]
    assert added[0]["previous_item_id"] == call_item["id"]  # the history: request, call, output
    assert (
        added[0]["item"]["type"] == "function_call_output"
        and added[0]["item"]["call_id"] == call_item["call_id"]
    )
    (start,) = s.receive(msg(type="response.create"), busy=False)
    # The output is said, as the answer to the request (which joins the history with it); no tools.
    assert start == StartReply(
        "What's the weather in Paris?", added[0]["item"]["id"], None, "Temp c 18, sky sunny."
    )
    assert (
        code(s.receive(output_item(call_item["call_id"], "again"), busy=False))
        == "duplicate_function_call_output"
    )
    assert code(s.receive(output_item("call_unknown", "x"), busy=False)) == "invalid_call_id"


def test_user_words_with_a_function_output_are_the_reply_s_request():
    s = with_tools()
    out = typed_call(s, "Set a timer for ten minutes", "set_timer", {"minutes": 10})
    call_id = next(e["item"]["call_id"] for e in out if e["type"] == "response.output_item.done")
    s.receive(output_item(call_id, "timer started"), busy=False)
    s.receive(text_item("Thanks!"), busy=False)
    (start,) = s.receive(msg(type="response.create"), busy=False)
    assert start.text == "Thanks!" and start.say == "Timer started."


def test_calls_kept_for_an_answer_are_bounded():
    s = with_tools()
    ids = []
    for turn in range(1, MAX_CALLS_KEPT + 2):
        out = typed_call(s, "Set a timer for ten minutes", "set_timer", {"minutes": 10}, turn)
        ids.append(next(e["item"]["call_id"] for e in out if e["type"] == "response.output_item.done"))
    assert code(s.receive(output_item(ids[0], "x"), busy=False)) == "invalid_call_id"  # forgotten
    assert types(s.receive(output_item(ids[-1], "x"), busy=False)) == ["conversation.item.added",
                                                                      "conversation.item.done"]  # fmt: skip


def test_a_spoken_turn_can_call_and_a_discarded_speculation_cannot():
    s = with_tools()
    s.on_pipeline_event(SpeechStarted(1, 0.0, 0.0))
    # A speculative attempt decided a call, then the user went on: that call is void.
    s.on_pipeline_event(FinalTranscript(1, 1.0, "Set a timer", 0.8, 90.0, True))
    s.on_pipeline_event(ToolCallDecided(1, 1.1, "set_timer", '{"minutes":1}', "Set a timer"))
    s.on_pipeline_event(SpeculationDiscarded(1, 1.2, "speech resumed", 100.0))
    s.on_pipeline_event(FinalTranscript(1, 2.0, "Set a timer for five minutes", 1.5, 90.0, True))
    s.on_pipeline_event(ToolCallDecided(1, 2.1, "set_timer", '{"minutes":5}', "Set a timer for five minutes"))
    commit = s.on_pipeline_event(EndpointCommitted(1, 2.4, 1.9, 300.0))
    done = s.on_pipeline_event(LatencyReport(1, 2.5, "Set a timer for five minutes", ""))
    sdk_valid(commit + done)
    (args,) = [e for e in done if e["type"] == "response.function_call_arguments.done"]
    assert json.loads(args["arguments"]) == {"minutes": 5}
    user_item = next(e["item"]["id"] for e in commit if e["type"] == "conversation.item.added")
    call_added = next(e for e in done if e["type"] == "conversation.item.added")
    assert call_added["previous_item_id"] == user_item


def test_a_cancelled_or_failed_response_sends_no_call():
    s = with_tools()
    s.receive(text_item("Set a timer for ten minutes"), busy=False)
    (start,) = s.receive(msg(type="response.create"), busy=False)
    s.begin_response(1, start.user_item_id)
    s.on_pipeline_event(ToolCallDecided(1, 1.0, "set_timer", '{"minutes":10}', "Set a timer for ten minutes"))
    s.on_pipeline_event(StageError(1, 1.1, "reply", "ToolSchemaError: 'minutes': unsupported"))
    done = s.on_pipeline_event(LatencyReport(1, 2.0, "Set a timer for ten minutes", ""))
    sdk_valid(done)
    assert "response.function_call_arguments.done" not in types(done)
    (response_done,) = [e for e in done if e["type"] == "response.done"]
    assert response_done["response"]["status"] == "failed" and response_done["response"]["output"] == []
    assert "ToolSchemaError" in response_done["response"]["status_details"]["error"]["message"]


# -- a tool's result as words -------------------------------------------------------------------------
def test_results_are_said_as_short_plain_words():
    assert spoken_result('{"temp_c": 18, "sky": "sunny"}') == "Temp c 18, sky sunny."
    assert (
        spoken_result('{"ok": true, "ends": ["10:05", "10:10"], "raw": {"a": 1}}')
        == "Ok yes, ends 10:05 and 10:10."
    )
    assert spoken_result("It is  raining\n") == "It is raining."
    assert spoken_result('"fine!"') == "Fine!"
    assert spoken_result("") == spoken_result("{}") == "Done."
    long = spoken_result("word " * 200)
    assert len(long) <= MAX_RESULT_CHARS + 1 and long.endswith("word.")


LIST_TOOL = {
    "type": "function",
    "name": "add_items",
    "parameters": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}}},
}


def test_a_schema_the_decoder_cannot_fill_is_refused_when_declared():
    def no_lists(tool: Tool) -> None:  # the session's rule around its hook, with plain inputs
        for key, prop in tool.parameters.get("properties", {}).items():
            if prop.get("type") == "array":
                raise ToolSchemaError(f"parameter {key!r}: type 'array' is not supported" + "!" * 300)

    s = RealtimeSession(replace(DEFAULTS, check_tool=no_lists))
    err = s.receive(session_update(tools=[WEATHER, LIST_TOOL]), busy=False)[0]["error"]
    assert err["code"] == "unsupported_tool_schema" and err["param"] == "session.tools[1].parameters"
    assert "'items': type 'array'" in err["message"] and len(err["message"]) < 320
    assert s.config.tools == ()
    s.receive(session_update(tools=[WEATHER]), busy=False)
    s.receive(text_item("Add milk"), busy=False)
    refused = msg(type="response.create", response={"tools": [LIST_TOOL]})
    assert code(s.receive(refused, busy=False)) == "unsupported_tool_schema"


def test_the_decoders_own_schema_check_refuses_what_it_cannot_fill():
    check = schema_checker()
    s = RealtimeSession(replace(DEFAULTS, check_tool=check))
    assert code(s.receive(session_update(tools=[LIST_TOOL]), busy=False)) == "unsupported_tool_schema"
    set_tools, updated = s.receive(session_update(tools=[WEATHER, TIMER]), busy=False)
    assert isinstance(set_tools, SetTools) and updated["type"] == "session.updated"
