"""Synthetic tool-call data for the embedded model (stage 8) and its held-out evaluation set.

    python -m recipe.tools_data   # writes recipe/data/train_tools.jsonl, train_tools_speech.jsonl, tool_eval.jsonl

Each example: a system message (the usual context sentences plus ``dlm_core.tools.tools_sentence`` of
2–5 tools, the right one among distractors, each room/device enum drawn afresh) and one request; the
reply is the call as ``CallFormat.call_text`` renders it (exactly what the decoder's skeleton holds).
Negatives keep the speech reply: the usual conversations (small talk, questions) with tools in the
prompt, and requests no offered tool covers ("I can't do that here yet").

The evaluation set (``tool_eval.jsonl``) uses other contexts, other random values and every phrasing,
plus ``UNSEEN`` tools that never appear in training, and held-out conversations as negatives.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.calculator import number_in_words
from dlm_core.families import FAMILIES
from dlm_core.tokenizer import ChatTokenizer
from dlm_core.tools import CallFormat, Tool, tools_sentence
from dlm_core.train.data import read_chat_jsonl
from recipe.filters import normalise_prompt
from recipe.intents import random_ctx
from recipe.listener_eval.prompts import load_prompts, user_texts

DATA = Path(__file__).resolve().parent / "data"
ROOMS = ["kitchen", "bedroom", "living_room", "bathroom", "hallway", "office", "garage", "porch", "nursery"]
Args = dict[str, Any]
Maker = Callable[[random.Random, Tool], tuple[str, Args]]


def num(rng: random.Random, n: int) -> str:
    """A number as typed or as a transcript spells it."""
    return number_in_words(n) if 0 <= n < 1000 and rng.random() < 0.5 else str(n)


def spoken(room: str) -> str:
    return room.replace("_", " ")


def enum_of(tool: Tool, key: str) -> list[Any]:
    return list(tool.parameters["properties"][key]["enum"])


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or []}


def integer(lo: int, hi: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


def rooms_enum(rng: random.Random, must: str | None = None) -> list[str]:
    picked = rng.sample(ROOMS, rng.randint(2, 4))
    if must and must not in picked:
        picked[rng.randrange(len(picked))] = must
    return picked


@dataclass
class Spec:
    """A tool family: builds a tool (enums drawn per example) and a request with its arguments."""

    build: Callable[[random.Random], Tool]
    make: Maker
    concept: str  # requests of the same concept are "covered" by any tool of it


STRING = {"type": "string"}
TIMER_NAMES = ["pasta", "eggs", "tea", "laundry", "pizza", "bread", "rice", "cookies", "nap", "workout"]
ITEMS = ["milk", "eggs", "bread", "bananas", "coffee", "olive oil", "dish soap", "apples", "rice", "butter"]
ARTISTS = ["Miles Davis", "Taylor Swift", "the Beatles", "Nina Simone", "Daft Punk", "Adele", "Bach"]
CITIES = ["Paris", "Oslo", "Chicago", "Tokyo", "Lisbon", "Denver", "Nairobi", "Berlin", "Sydney"]
TASKS = ["call mom", "water the plants", "take the bins out", "pay the rent", "feed the cat", "buy stamps"]
CONTACTS = ["Anna", "Ben", "Maria", "Tom", "Priya", "Lucas", "Grandma"]
MESSAGES = ["I'm running late", "dinner is ready", "see you soon", "call me back", "I'm on my way"]


def _timer_tool(name: str, minutes: str, label: str, desc: str) -> Callable[[random.Random], Tool]:
    return lambda rng: Tool(name, desc, obj({minutes: integer(0, 600), label: STRING}, [minutes]))


def _timer(minutes: str, label: str) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        n = rng.choice([1, 2, 3, 4, 5, 7, 8, 10, 12, 15, 20, 25, 30, 40, 45, 60, 90, rng.randint(1, 120)])
        unit = "minute" if n == 1 else "minutes"
        w = num(rng, n)
        named = rng.random() < 0.45
        lab = rng.choice(TIMER_NAMES)
        if named:
            text = rng.choice(
                [
                    f"set a {lab} timer for {w} {unit}",
                    f"start a {w} minute timer called {lab}",
                    f"set a timer named {lab} for {w} {unit}",
                    f"{lab} timer, {w} {unit}",
                    f"can you time {w} {unit} for the {lab}",
                ]
            )
            return text, {minutes: n, label: lab}
        text = rng.choice(
            [
                f"set a timer for {w} {unit}",
                f"timer for {w} {unit} please",
                f"start a {w} minute timer",
                f"can you set a timer for {w} {unit}",
                f"count down {w} {unit}",
                f"put a timer on for {w} {unit}",
                f"{w} {unit} timer",
            ]
        )
        return text, {minutes: n}

    return make


def _cancel(label: str) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        lab = rng.choice(TIMER_NAMES)
        if rng.random() < 0.5:
            text = rng.choice([f"cancel the {lab} timer", f"stop the {lab} timer", f"delete my {lab} timer"])
            return text, {label: lab}
        return rng.choice(
            ["cancel the timer", "stop my timer", "cancel my timer please", "kill the timer"]
        ), {}

    return make


def _no_args(phrases: list[str]) -> Maker:
    return lambda rng, tool: (rng.choice(phrases), {})


def _time_left(label: str) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        lab = rng.choice(TIMER_NAMES)
        if rng.random() < 0.5:
            text = rng.choice(
                [f"how much time is left on the {lab} timer", f"how long until the {lab} is done"]
            )
            return text, {label: lab}
        return rng.choice(["how much time is left", "how long is left on my timer", "time left?"]), {}

    return make


def _light_tool(name: str, device: str, state: str, level: str | None) -> Callable[[random.Random], Tool]:
    def build(rng: random.Random) -> Tool:
        props: dict[str, Any] = {
            device: {"type": "string", "enum": rooms_enum(rng)},
            state: {"type": "string", "enum": ["on", "off"]},
        }
        if level:
            props[level] = integer(0, 100)
        return Tool(name, "Switch or dim the lights in a room.", obj(props, [device, state]))

    return build


def _light(device: str, state: str, level: str | None) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        room = rng.choice(enum_of(tool, device))
        r = spoken(room)
        if level and rng.random() < 0.35:
            n = rng.choice([10, 20, 25, 30, 40, 50, 60, 70, 75, 80, rng.randint(1, 99)])
            text = rng.choice(
                [
                    f"dim the {r} lights to {num(rng, n)} percent",
                    f"set the {r} lamp to {num(rng, n)} percent",
                    f"{r} lights at {num(rng, n)} percent please",
                    f"make the {r} light {num(rng, n)} percent",
                ]
            )
            return text, {device: room, state: "on", level: n}
        on = rng.random() < 0.5
        word = "on" if on else "off"
        text = rng.choice(
            [
                f"turn {word} the {r} lights",
                f"turn the {r} light {word}",
                f"switch {word} the {r} lamp",
                f"{r} lights {word} please",
                f"lights {word} in the {r}",
                f"can you turn {word} the light in the {r}",
            ]
        )
        return text, {device: room, state: word}

    return make


def _thermostat(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    n = rng.randint(12, 28)
    w = num(rng, n)
    mode = rng.random() < 0.3
    if mode:
        m = rng.choice(["heat", "cool"])
        verb = "heat" if m == "heat" else "cool"
        return rng.choice([f"{verb} the house to {w} degrees", f"set it to {verb} at {w} degrees"]), {
            "temperature": n,
            "mode": m,
        }
    text = rng.choice(
        [
            f"set the thermostat to {w} degrees",
            f"make it {w} degrees in here",
            f"set the heating to {w}",
            f"change the temperature to {w} degrees",
        ]
    )
    return text, {"temperature": n}


def _media(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    action = rng.choice(["play", "pause", "next", "previous", "stop"])
    text = {
        "play": ["resume the music", "play the music again", "unpause"],
        "pause": ["pause the music", "pause it", "hold the music"],
        "next": ["next song", "skip this track", "play the next one"],
        "previous": ["previous song", "go back a track", "play the last song again"],
        "stop": ["stop the music", "stop playing", "turn the music off"],
    }[action]
    return rng.choice(text), {"action": action}


def _play(key: str) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        a = rng.choice(ARTISTS)
        return rng.choice([f"play some {a}", f"put on {a}", f"I want to hear {a}", f"play music by {a}"]), {
            key: a
        }

    return make


def _volume(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    n = rng.choice([10, 20, 30, 40, 50, 60, 80, rng.randint(0, 100)])
    w = num(rng, n)
    return rng.choice([f"set the volume to {w}", f"volume {w}", f"turn the volume to {w} percent"]), {
        "level": n
    }


def _weather(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    c = rng.choice(CITIES)
    if rng.random() < 0.4:
        day = rng.choice(["today", "tomorrow"])
        return rng.choice([f"what's the weather in {c} {day}", f"will it rain in {c} {day}"]), {
            "city": c,
            "day": day,
        }
    return rng.choice([f"what's the weather like in {c}", f"how warm is it in {c}", f"weather in {c}"]), {
        "city": c
    }


def _add_item(key: str) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        it = rng.choice(ITEMS)
        text = rng.choice(
            [
                f"add {it} to the shopping list",
                f"put {it} on my list",
                f"we need {it}",
                f"add {it} to my groceries",
                f"don't let me forget to buy {it}",
            ]
        )
        return text, {key: it}

    return make


def _reminder(msg: str, minutes: str) -> Maker:
    def make(rng: random.Random, tool: Tool) -> tuple[str, Args]:
        task = rng.choice(TASKS)
        n = rng.choice([5, 10, 15, 20, 30, 45, 60, rng.randint(1, 120)])
        w = num(rng, n)
        text = rng.choice(
            [
                f"remind me to {task} in {w} minutes",
                f"in {w} minutes remind me to {task}",
                f"set a reminder to {task} in {w} minutes",
            ]
        )
        return text, {msg: task, minutes: n}

    return make


def _alarm(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    h = rng.randint(1, 12)
    m = rng.choice([0, 0, 15, 30, 45, rng.randint(1, 59)])
    when = num(rng, h) if m == 0 else f"{h}:{m:02d}"
    args: Args = {"hour": h}
    if m:
        args["minute"] = m
    if rng.random() < 0.5:
        p = rng.choice(["am", "pm"])
        args["period"] = p
        when = f"{when} {p}"
    return rng.choice([f"set an alarm for {when}", f"wake me up at {when}", f"alarm at {when} please"]), args


def _message(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    c, m = rng.choice(CONTACTS), rng.choice(MESSAGES)
    return rng.choice([f"text {c} that {m}", f"send {c} a message saying {m}", f"tell {c} {m}"]), {
        "contact": c,
        "text": m,
    }


def _fixed(tool: Tool) -> Callable[[random.Random], Tool]:
    return lambda rng: tool


TRAIN: dict[str, Spec] = {
    "set_timer": Spec(
        _timer_tool("set_timer", "minutes", "name", "Start a countdown timer."),
        _timer("minutes", "name"),
        "timer",
    ),
    "start_countdown": Spec(
        _timer_tool("start_countdown", "duration_minutes", "label", "Count down and ring at the end."),
        _timer("duration_minutes", "label"),
        "timer",
    ),
    "cancel_timer": Spec(
        _fixed(Tool("cancel_timer", "Cancel a running timer.", obj({"name": STRING}))),
        _cancel("name"),
        "cancel",
    ),
    "list_timers": Spec(
        _fixed(Tool("list_timers", "List the running timers.")),
        _no_args(["what timers do I have", "list my timers", "show the timers", "which timers are running"]),
        "list",
    ),
    "time_left": Spec(
        _fixed(Tool("time_left", "Say how long a timer has left.", obj({"name": STRING}))),
        _time_left("name"),
        "left",
    ),
    "set_light": Spec(
        _light_tool("set_light", "device", "state", "brightness"),
        _light("device", "state", "brightness"),
        "light",
    ),
    "switch_lamp": Spec(
        _light_tool("switch_lamp", "room", "power", None), _light("room", "power", None), "light"
    ),
    "set_thermostat": Spec(
        _fixed(
            Tool(
                "set_thermostat",
                "Set the heating or cooling target.",
                obj(
                    {
                        "temperature": integer(10, 30),
                        "mode": {"type": "string", "enum": ["heat", "cool", "auto"]},
                    },
                    ["temperature"],
                ),
            )
        ),
        _thermostat,
        "thermostat",
    ),
    "media_control": Spec(
        _fixed(
            Tool(
                "media_control",
                "Control the music player.",
                obj(
                    {"action": {"type": "string", "enum": ["play", "pause", "next", "previous", "stop"]}},
                    ["action"],
                ),
            )
        ),
        _media,
        "media",
    ),
    "play_music": Spec(
        _fixed(Tool("play_music", "Play music by an artist.", obj({"artist": STRING}, ["artist"]))),
        _play("artist"),
        "play",
    ),
    "get_weather": Spec(
        _fixed(
            Tool(
                "get_weather",
                "Look up the weather forecast.",
                obj({"city": STRING, "day": {"type": "string", "enum": ["today", "tomorrow"]}}, ["city"]),
            )
        ),
        _weather,
        "weather",
    ),
    "add_to_shopping_list": Spec(
        _fixed(
            Tool("add_to_shopping_list", "Add an item to the shopping list.", obj({"item": STRING}, ["item"]))
        ),
        _add_item("item"),
        "shopping",
    ),
    "set_reminder": Spec(
        _fixed(
            Tool(
                "set_reminder",
                "Remind the user of something later.",
                obj({"message": STRING, "minutes": integer(1, 600)}, ["message", "minutes"]),
            )
        ),
        _reminder("message", "minutes"),
        "reminder",
    ),
    "set_alarm": Spec(
        _fixed(
            Tool(
                "set_alarm",
                "Set a wake-up alarm.",
                obj(
                    {
                        "hour": integer(1, 12),
                        "minute": integer(0, 59),
                        "period": {"type": "string", "enum": ["am", "pm"]},
                    },
                    ["hour"],
                ),
            )
        ),
        _alarm,
        "alarm",
    ),
    "send_message": Spec(
        _fixed(
            Tool(
                "send_message",
                "Send a text message to a contact.",
                obj({"contact": STRING, "text": STRING}, ["contact", "text"]),
            )
        ),
        _message,
        "message",
    ),
}


# -- tools never seen in training (evaluation only) -----------------------------------------------
def _fan_tool(rng: random.Random) -> Tool:
    return Tool(
        "set_fan",
        "Set the fan speed in a room.",
        obj(
            {
                "room": {"type": "string", "enum": rooms_enum(rng)},
                "speed": {"type": "string", "enum": ["off", "low", "medium", "high"]},
            },
            ["room", "speed"],
        ),
    )


def _fan(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    room, speed = rng.choice(enum_of(tool, "room")), rng.choice(["off", "low", "medium", "high"])
    r = spoken(room)
    if speed == "off":
        return rng.choice([f"turn off the fan in the {r}", f"{r} fan off"]), {"room": room, "speed": "off"}
    return rng.choice([f"set the {r} fan to {speed}", f"put the fan in the {r} on {speed}"]), {
        "room": room,
        "speed": speed,
    }


def _door(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    door, action = rng.choice(["front", "back", "garage"]), rng.choice(["lock", "unlock"])
    return rng.choice(
        [f"{action} the {door} door", f"please {action} the {door} door", f"can you {action} the {door} door"]
    ), {
        "door": door,
        "action": action,
    }


def _task(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    task = rng.choice(
        ["fix the bike", "renew my passport", "book the dentist", "clean the garage", "email the landlord"]
    )
    return rng.choice([f"add {task} to my to-do list", f"put {task} on my todo list", f"new task: {task}"]), {
        "task": task
    }


def _call(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    c = rng.choice(["Anna", "Dad", "Oliver", "Sofia", "Mike", "Grandpa"])
    return rng.choice([f"call {c}", f"phone {c} for me", f"give {c} a call"]), {"contact": c}


def _blinds(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    room = rng.choice(enum_of(tool, "room"))
    r = spoken(room)
    if rng.random() < 0.5:
        n = rng.choice([0, 25, 50, 75, 100, rng.randint(1, 99)])
        return rng.choice(
            [f"open the {r} blinds to {num(rng, n)} percent", f"set the {r} blinds at {num(rng, n)} percent"]
        ), {
            "room": room,
            "position": n,
        }
    up = rng.random() < 0.5
    return rng.choice(
        [f"{'open' if up else 'close'} the {r} blinds", f"blinds {'up' if up else 'down'} in the {r}"]
    ), {
        "room": room,
        "position": 100 if up else 0,
    }


def _water(rng: random.Random, tool: Tool) -> tuple[str, Args]:
    zone, n = rng.choice(["front", "back", "side"]), rng.choice([5, 10, 15, 20, 30])
    return rng.choice(
        [
            f"water the {zone} garden for {num(rng, n)} minutes",
            f"run the {zone} sprinklers for {num(rng, n)} minutes",
        ]
    ), {
        "zone": zone,
        "minutes": n,
    }


UNSEEN: dict[str, Spec] = {
    "set_fan": Spec(_fan_tool, _fan, "fan"),
    "door_lock": Spec(
        _fixed(
            Tool(
                "door_lock",
                "Lock or unlock a door.",
                obj(
                    {
                        "door": {"type": "string", "enum": ["front", "back", "garage"]},
                        "action": {"type": "string", "enum": ["lock", "unlock"]},
                    },
                    ["door", "action"],
                ),
            )
        ),
        _door,
        "door",
    ),
    "add_task": Spec(
        _fixed(Tool("add_task", "Add a task to the to-do list.", obj({"task": STRING}, ["task"]))),
        _task,
        "task",
    ),
    "call_contact": Spec(
        _fixed(Tool("call_contact", "Phone someone.", obj({"contact": STRING}, ["contact"]))), _call, "call"
    ),
    "set_blinds": Spec(
        lambda rng: Tool(
            "set_blinds",
            "Open or close the window blinds.",
            obj(
                {"room": {"type": "string", "enum": rooms_enum(rng)}, "position": integer(0, 100)},
                ["room", "position"],
            ),
        ),
        _blinds,
        "blinds",
    ),
    "water_garden": Spec(
        _fixed(
            Tool(
                "water_garden",
                "Run the garden sprinklers.",
                obj(
                    {
                        "zone": {"type": "string", "enum": ["front", "back", "side"]},
                        "minutes": integer(1, 60),
                    },
                    ["zone", "minutes"],
                ),
            )
        ),
        _water,
        "water",
    ),
}

# Requests nothing offered covers: the reply says so (speech, never a call).
UNCOVERED = [
    "order me a pizza",
    "book a flight to Rome",
    "call a taxi",
    "buy me a new phone",
    "transfer fifty dollars to Sam",
    "start the car",
    "open the fridge",
    "vacuum the living room",
]
CANT = [
    "Sorry, I can't do that here yet.",
    "I can't do that from here, sorry.",
    "That's not something I can do yet.",
]


def variant(rng: random.Random, text: str, args: Args) -> tuple[str, Args]:
    """As typed, or as a transcript (lower case, no punctuation): copied strings follow the text."""
    if rng.random() < 0.4:
        strip = lambda s: re.sub(r"[.,!?;:]", "", s).lower()  # noqa: E731
        return strip(text), {k: strip(v) if isinstance(v, str) and v in text else v for k, v in args.items()}
    starts_with_value = any(isinstance(v, str) and text.startswith(v) for v in args.values())
    if rng.random() < 0.5 and not starts_with_value:  # a copied value keeps its case
        text = (
            text[0].upper()
            + text[1:]
            + rng.choice([".", "", "?" if text.startswith(("how", "what")) else "."])
        )
    return text, args


def tool_set(
    rng: random.Random, specs: dict[str, Spec], target: str | None, pool: dict[str, Spec]
) -> list[tuple[str, Tool]]:
    """The target tool among 1–4 distractors of other concepts, in random order."""
    names = [n for n in pool if n != target and (target is None or pool[n].concept != specs[target].concept)]
    chosen = rng.sample(names, rng.randint(1, 4))
    if target is not None:
        chosen.insert(rng.randrange(len(chosen) + 1), target)
    return [(n, (specs.get(n) or pool[n]).build(rng)) for n in chosen]


def call_example(
    rng: random.Random, fmt: CallFormat, specs: dict[str, Spec], pool: dict[str, Spec], name: str
) -> dict:
    tools = tool_set(rng, specs, name, pool)
    tool = next(t for n, t in tools if n == name)
    text, args = variant(rng, *specs[name].make(rng, tool))
    ctx = random_ctx(rng)
    system = f"{ctx.system} {tools_sentence([t for _, t in tools])}"
    reply = fmt.call_text(tool, args, fmt.name_width([t for _, t in tools]))
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
            {"role": "assistant", "content": reply},
        ],
        "kind": "tool_call",
        "tool": name,
        "arguments": args,
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters} for _, t in tools
        ],
    }


def uncovered_example(rng: random.Random, specs: dict[str, Spec], pool: dict[str, Spec]) -> dict:
    """A request of a concept no offered tool covers (or of none at all): speech."""
    if rng.random() < 0.5:
        text = rng.choice(UNCOVERED)
        tools = tool_set(rng, specs, None, pool)
    else:
        name = rng.choice(list(specs))
        text, _ = specs[name].make(rng, specs[name].build(rng))
        concept = specs[name].concept
        others = {n: s for n, s in pool.items() if s.concept != concept}
        tools = tool_set(rng, others, None, others)
    text, _ = variant(rng, text, {})
    ctx = random_ctx(rng)
    system = f"{ctx.system} {tools_sentence([t for _, t in tools])}"
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
            {"role": "assistant", "content": rng.choice(CANT)},
        ],
        "kind": "tool_uncovered",
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters} for _, t in tools
        ],
    }


def speech_with_tools(
    rng: random.Random, conversation: list[dict[str, str]], pool: dict[str, Spec], kind: str
) -> dict:
    """An ordinary conversation (its reply is speech) with tools in its system message."""
    tools = tool_set(rng, pool, None, pool)
    messages = [dict(m) for m in conversation]
    sentence = tools_sentence([t for _, t in tools])
    if messages[0]["role"] == "system":
        messages[0]["content"] = f"{messages[0]['content'].strip()} {sentence}"
    else:
        messages.insert(0, {"role": "system", "content": sentence})
    return {
        "messages": messages,
        "kind": kind,
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters} for _, t in tools
        ],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipe.tools_data", description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=8000)
    ap.add_argument("--speech", type=int, default=4000)
    ap.add_argument("--uncovered", type=int, default=800)
    ap.add_argument("--eval-seen", type=int, default=150)
    ap.add_argument("--eval-unseen", type=int, default=90)
    ap.add_argument("--eval-speech", type=int, default=100)
    ap.add_argument("--eval-uncovered", type=int, default=30)
    args = ap.parse_args(argv)
    tok = ChatTokenizer.from_file(DATA / "tokenizer.json", FAMILIES["quickturn"])
    fmt = CallFormat(tok, tok.token_id("<|pad|>"))

    rng = random.Random(8)
    names = list(TRAIN)
    calls = [call_example(rng, fmt, TRAIN, TRAIN, rng.choice(names)) for _ in range(args.calls)]
    speech = [uncovered_example(rng, TRAIN, TRAIN) for _ in range(args.uncovered)]
    convs = []
    for part in ("train_names", "train_parts", "train_copy", "train_memory", "train_sums"):
        convs += read_chat_jsonl(DATA / f"{part}.jsonl")
    speech += [speech_with_tools(rng, conv, TRAIN, "tool_speech") for conv in rng.sample(convs, args.speech)]
    rng.shuffle(speech)
    # Never a user message the listener evaluation asks (its prompts stay held out of every data set).
    listener = {normalise_prompt(t) for item in load_prompts() for t in user_texts(item)}
    calls = [r for r in calls if not any(_asks(r, listener))]
    speech = [r for r in speech if not any(_asks(r, listener))]
    # Calls and speech apart: the calls' reply tokens join the output vocabulary, speech adds none.
    # The training rows drop their tool definitions (they are in the system sentence).
    _write(DATA / "train_tools.jsonl", [{k: v for k, v in r.items() if k != "tools"} for r in calls])
    _write(DATA / "train_tools_speech.jsonl", [{k: v for k, v in r.items() if k != "tools"} for r in speech])

    rng = random.Random(21)  # held out: other draws, unseen tools, held-out conversations
    everything = {**TRAIN, **UNSEEN}
    evals = [call_example(rng, fmt, TRAIN, everything, rng.choice(names)) for _ in range(args.eval_seen)]
    evals += [
        {**call_example(rng, fmt, UNSEEN, everything, rng.choice(list(UNSEEN))), "unseen": True}
        for _ in range(args.eval_unseen)
    ]
    evals += [uncovered_example(rng, TRAIN, everything) for _ in range(args.eval_uncovered)]
    heldout = read_chat_jsonl(DATA / "heldout.jsonl")
    for conv in rng.sample(heldout, args.eval_speech):
        evals.append(speech_with_tools(rng, conv, everything, "tool_speech"))
    _write(DATA / "tool_eval.jsonl", evals)
    print(
        f"train_tools.jsonl: {len(calls)} calls, train_tools_speech.jsonl: {len(speech)}, tool_eval.jsonl: {len(evals)} (unseen tools: {sorted(UNSEEN)})"
    )
    return 0


def _asks(row: dict, texts: set[str]) -> Iterator[bool]:
    return (m["role"] == "user" and normalise_prompt(m["content"]) in texts for m in row["messages"])


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
