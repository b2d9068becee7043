"""Templated voice-assistant exchanges: the core of the embedded model's training data.

Every intent draws a fresh context (assistant name, date, time) per example, fills user phrasings and
reply variants, and says which strings a correct reply must (``expect_any``) or must not
(``expect_none``) contain. Each intent reserves some of its phrasings for the held-out split, so the
evaluation sees wordings the model never trained on.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.calculator import number_in_words
from agent.prompt import (
    context_sentences,
    part_of_day,
    spoken_date,
    spoken_time,
)
from recipe import facts as F
from recipe.context import context_of
from recipe.jokes import JOKES
from recipe.lexicon import (
    ASSISTANT_NAMES,
    CITIES,
    COLORS,
    FOODS,
    HOBBIES,
    JOBS,
    PET_NAMES,
    PETS,
    USER_NAMES,
)

Messages = list[dict[str, str]]


@dataclass
class Example:
    messages: Messages
    source: str
    kind: str
    expect_any: list[str] | None = None
    expect_none: list[str] | None = None

    @property
    def user_text(self) -> str:
        return self.messages[-2]["content"]

    @property
    def reply(self) -> str:
        return self.messages[-1]["content"]

    @property
    def agent_messages(self) -> Messages:
        """The messages as the agent sends them: the context (``agent.prompt.Context``) gains what the
        user said about themselves in earlier turns and what the agent works out from the request (a
        sum's result), so training sees what serving sees."""
        context = context_of(self.messages[:-1])
        if context is None:
            return self.messages
        return [{"role": "system", "content": context.system}, *self.messages[1:]]

    def as_json(self) -> dict:
        d: dict = {"messages": self.agent_messages, "source": self.source, "kind": self.kind}
        if self.expect_any:
            d["expect_any"] = self.expect_any
        if self.expect_none:
            d["expect_none"] = self.expect_none
        return d


@dataclass(frozen=True)
class Ctx:
    """One example's injected context, with the spoken strings a reply may copy."""

    name: str
    now: datetime

    @property
    def system(self) -> str:
        return context_sentences(self.name, self.now)

    @property
    def slots(self) -> dict[str, str]:
        phrase = part_of_day(self.now)
        return {
            "name": self.name,
            "time": spoken_time(self.now),
            "date": spoken_date(self.now),  # "Tuesday, November 26"
            "weekday": self.now.strftime("%A"),
            "month": self.now.strftime("%B"),
            "day_month": f"{self.now.strftime('%B')} {self.now.day}",
            "year": str(self.now.year),
            "part_phrase": phrase,
        }


def random_ctx(rng: random.Random, names: Sequence[str] = ASSISTANT_NAMES) -> Ctx:
    """Any minute of 2024–2030: times and dates must be copied, never memorised."""
    start = datetime(2024, 1, 1)
    minutes = rng.randrange(7 * 365 * 24 * 60)
    now = start + timedelta(minutes=minutes)
    # Round minutes a little more often, as clocks are asked about at all minutes but :00/:30 are common.
    if rng.random() < 0.15:
        now = now.replace(minute=rng.choice((0, 15, 30, 45)))
    return Ctx(rng.choice(names), now)


def asr_variant(rng: random.Random, text: str, ctx: Ctx | None = None) -> str:
    """How the phrasing may reach the model: as typed, or as an ASR transcript (lower case, no
    punctuation), sometimes with a wake word or filler in front."""
    r = rng.random()
    if r < 0.4:
        text = re.sub(r"[.,!?;]", "", text).lower()
    if ctx is not None and rng.random() < 0.08:
        lead = rng.choice([f"hey {ctx.name}", f"{ctx.name}", "okay", "um", "so", "hey"])
        if text[:1].isupper() and not text.startswith("I "):
            text = text[0].lower() + text[1:]
        text = f"{lead}, {text}" if r >= 0.4 else f"{lead.lower()} {text}"
    return text


def fill(template: str, slots: dict[str, str]) -> str:
    return template.format(**slots)


# --------------------------------------------------------------------------------------------------
# Intent definitions
# --------------------------------------------------------------------------------------------------


@dataclass
class Intent:
    """A family of exchanges. ``phrasings`` and ``replies`` are format strings over the context slots
    (plus ``extra_slots(rng)``). ``expect`` names slots a held-out reply must contain (any of them)."""

    kind: str
    group: str
    phrasings: Sequence[str]
    replies: Sequence[str]
    expect: tuple[str, ...] = ()
    negative: bool = True  # reply must not mention the time or the assistant's name
    extra_slots: Callable[[random.Random, Ctx], dict[str, str]] | None = None
    history: bool = True  # may get unrelated earlier turns
    held_phrasings: tuple[str, ...] = field(default=(), init=False)
    train_phrasings: tuple[str, ...] = field(default=(), init=False)

    def split(self, rng: random.Random, share: float) -> None:
        p = list(dict.fromkeys(self.phrasings))
        rng.shuffle(p)
        k = max(1, round(share * len(p))) if len(p) >= 3 else 0
        self.held_phrasings, self.train_phrasings = tuple(p[:k]), tuple(p[k:])

    def sample(self, rng: random.Random, held: bool, ctx: Ctx) -> Example:
        slots = dict(ctx.slots)
        if self.extra_slots:
            slots.update(self.extra_slots(rng, ctx))
        pool = self.held_phrasings if held and self.held_phrasings else self.train_phrasings
        user = asr_variant(rng, fill(rng.choice(pool), slots), ctx)
        reply = fill(rng.choice(self.replies), slots)
        msgs = [{"role": "system", "content": ctx.system}]
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        ex = Example(msgs, "templates", self.kind)
        if self.expect:
            ex.expect_any = [slots[s] for s in self.expect]
        elif self.negative:
            ex.expect_none = [slots["time"], ctx.name]
        return ex


def _weekday_guess(rng: random.Random, ctx: Ctx) -> dict[str, str]:
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    same = rng.random() < 0.4
    guess = ctx.slots["weekday"] if same else rng.choice([d for d in days if d != ctx.slots["weekday"]])
    ans = "Yes" if same else "No"
    tail = "it is." if same else "it isn't."
    return {"guess": guess, "yes_no": ans, "tail": tail}


def arith_slots(rng: random.Random, ctx: Ctx) -> dict[str, str]:
    op = rng.choice(["plus", "minus", "times", "divided by"])
    if op == "plus":
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        r = a + b
    elif op == "minus":
        a, b = rng.randint(2, 99), rng.randint(1, 99)
        a, b = max(a, b), min(a, b)
        r = a - b
    elif op == "times":
        a, b = rng.randint(1, 12), rng.randint(1, 12)
        r = a * b
    else:
        b, r = rng.randint(1, 12), rng.randint(1, 12)
        a = b * r
    return {"a": str(a), "b": str(b), "op": op, "result": str(r)}


def spoken_arith_slots(rng: random.Random, ctx: Ctx) -> dict[str, str]:
    """``arith_slots`` with the operands as a transcript may write them (``a_said``, ``b_said``):
    mostly in words, sometimes one side in digits; a quarter are one-digit sums ("two plus two")."""
    slots = arith_slots(rng, ctx)
    if rng.random() < 0.25 and slots["op"] in ("plus", "times"):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        r = a + b if slots["op"] == "plus" else a * b
        slots |= {"a": str(a), "b": str(b), "result": str(r)}
    said = [number_in_words(int(slots[k])) for k in ("a", "b")]
    if rng.random() < 0.3:
        k = rng.randrange(2)
        said[k] = slots["ab"[k]]
    return slots | {"a_said": said[0], "b_said": said[1]}


TIME_Q = (
    "What time is it?", "What's the time?", "Do you know what time it is?", "Can you tell me the time?",
    "What time is it right now?", "Tell me the time.", "What's the time now?", "Got the time?",
    "What's the current time?", "Could you tell me what time it is?", "Time please.", "What time do you have?",
    "How late is it?", "Do you have the time?", "Check the time for me.", "Any idea what time it is?",
    "What time is it now?", "Hey, what time is it?", "I need to know the time.", "What does the clock say?",
    "Is it late?", "What hour is it?", "Please tell me the current time.", "Remind me what time it is.",
)  # fmt: skip
TIME_A = (
    "It's {time} now.", "The time is {time}.", "It's {time} right now.", "Right now it's {time}.",
    "It is {time}.", "It's currently {time}.", "It's {time} at the moment.", "Sure, it's {time}.",
    "The clock says {time}.", "It's {time} now.",
)  # fmt: skip
PART_Q = (
    "Is it morning or afternoon?",
    "Is it morning right now?",
    "Is it the evening yet?",
    "What part of the day is it?",
    "Is it still morning?",
)
PART_A = (
    "It's {time}, so it's {part_phrase}.",
    "It's {part_phrase}. The time is {time}.",
    "It's {time}, so it's {part_phrase} now.",
)
# Written for the part-of-day set (build_data.build_part_set) after stage 4 answered the held-out
# "Is it the evening yet?" with the weekday or a "Good evening!" greeting (17 of its 19 failed time
# questions): more ways to ask which part of the day it is, none of them a PART_Q phrasing.
PART_MORE_Q = (
    "Is it afternoon yet?", "Is it night yet?", "Is it nighttime already?", "Is it still the afternoon?",
    "Are we in the morning or the evening?", "Is it late in the day?", "Has the afternoon started?",
    "Is it daytime or night?", "What time of day is it?", "Morning, afternoon or evening?",
    "Is it still night?", "Is it morning already?", "Is it getting late?", "Is it day or night now?",
)  # fmt: skip
DAY_Q = (
    "What day is it?", "What day is it today?", "What's today?", "Which day of the week is it?",
    "What day of the week is it?", "Do you know what day it is?", "Tell me what day it is.",
    "What's the day today?", "Remind me what day it is.", "Can you tell me the day?",
    "I lost track of the days, what day is it?", "What day are we on?",
)  # fmt: skip
DAY_A = (
    "Today is {date}.",
    "It's {date}.",
    "Today is a {weekday}.",
    "It's a {weekday} today.",
    "It's {weekday} today, {day_month}.",
)
DATE_Q = (
    "What's the date?", "What's today's date?", "What is the date today?", "Can you tell me the date?",
    "What date is it?", "Tell me today's date.", "Do you know the date?", "What's the date today?",
    "Which date is it today?", "What is today's date?", "Give me the date.", "Remind me of the date.",
)  # fmt: skip
DATE_A = (
    "Today is {date}, {year}.", "It's {date}, {year}.", "It's {day_month}, {year}.",
    "Today's date is {date}, {year}.", "The date is {day_month}, {year}.", "Today is {date}.",
)  # fmt: skip
MONTH_Q = ("What month is it?", "Which month are we in?", "What month is it now?", "Tell me the month.")
MONTH_A = (
    "It's {month} right now.",
    "We're in {month} now.",
    "The month is {month}.",
    "It's {month} of {year}.",
)
YEAR_Q = ("What year is it?", "Which year is it?", "What year are we in?", "Tell me the year.")
YEAR_A = ("It's {year} right now.", "The year is {year}.", "We're in {year} now.", "It's the year {year}.")
IS_DAY_Q = ("Is it {guess} today?", "Is today {guess}?", "Is it {guess}?", "Today is {guess}, right?")
IS_DAY_A = (
    "{yes_no}, today is {weekday}.",
    "{yes_no}, it's {weekday} today.",
    "{yes_no}, {tail} Today is {weekday}.",
)
NAME_Q = (
    "What's your name?", "What is your name?", "Who are you?", "What should I call you?",
    "Do you have a name?", "What are you called?", "Tell me your name.", "May I ask your name?",
    "What do people call you?", "Who am I talking to?", "Remind me of your name.", "Introduce yourself.",
    "What's your name again?", "Who is this?", "What do I call you?", "How should I address you?",
)  # fmt: skip
NAME_A = (
    "My name is {name}.", "I'm {name}, your assistant.", "I'm {name}, your voice assistant.", "You can call me {name}.",
    "I'm {name}. How can I help you?", "My name is {name}. Nice to talk with you.",
    "I'm {name}, a voice assistant. What can I do for you?", "The name is {name}.",
)  # fmt: skip
# Written for the name set (build_data.build_name_set) after stage 3 read held-out "What do I call
# you?" as a question about the user: more ways of asking the assistant's name, none of them a NAME_Q
# phrasing (so neither side of its train/held-out split), and ways of asking the user's own name that
# differ from those only in who is named.
OWN_NAME_MORE_Q = (
    "What can I call you?", "What name do you go by?", "How do I address you?", "What are you named?",
    "Got a name?", "And who are you?", "Who am I speaking with?", "Could you tell me your name?",
    "What do they call you?", "What name should I use for you?", "Tell me who you are.",
    "Which name do you use?", "What's your name, assistant?", "How do people address you?",
    "What were you named?", "Say your name.",
)  # fmt: skip
USER_NAME_MORE_Q = (
    "What do you call me?", "What name do you use for me?", "How do you address me?", "What am I called?",
    "Who did I say I am?", "What name did I tell you?", "Tell me who I am.", "Say my name, please.",
)  # fmt: skip
ROBOT_Q = (
    "Are you a robot?",
    "Are you human?",
    "Are you a real person?",
    "Are you a computer?",
    "Are you an AI?",
    "Are you alive?",
    "Are you a person?",
)
ROBOT_A = (
    "I'm {name}, a computer program that talks with you. I'm not a person.",
    "I'm not human. I'm {name}, a voice assistant.",
    "No, I'm {name}, an assistant that runs on this computer.",
)


def context_intents() -> list[Intent]:
    """Questions answered by copying from the injected context."""
    return [
        Intent("time", "time", TIME_Q, TIME_A, expect=("time",)),
        Intent("time", "time", PART_Q, PART_A, expect=("time",)),
        Intent("weekday", "date", DAY_Q, DAY_A, expect=("weekday",)),
        Intent("date", "date", DATE_Q, DATE_A, expect=("day_month",)),
        Intent("date", "date", MONTH_Q, MONTH_A, expect=("month",)),
        Intent("date", "date", YEAR_Q, YEAR_A, expect=("year",)),
        Intent("weekday", "date", IS_DAY_Q, IS_DAY_A, expect=("weekday",), extra_slots=_weekday_guess),
        Intent("name", "name", NAME_Q, NAME_A, expect=("name",)),
        Intent("name", "name", ROBOT_Q, ROBOT_A, expect=("name",)),
    ]


def plain(kind: str, group: str, pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[Intent]:
    return [Intent(kind, group, q, a) for q, a in pairs]


def social_intents() -> list[Intent]:
    greeting = plain(
        "greeting",
        "greeting",
        [
            (
                ("Hello.", "Hi.", "Hey there.", "Hi there!", "Hello there.", "Hey.", "Howdy.", "Hiya.",
                 "Yo.", "Greetings.", "Hello, anyone there?", "Hi, how's it going?", "Hey, what's up?"),
                ("Hi there! How can I help?", "Hello! What can I do for you?", "Hey! Nice to hear from you.",
                 "Hi! What's on your mind?", "Hello! How's your day going?", "Hey there! How can I help you today?"),
            ),
            (
                ("Good morning.", "Morning!", "Good morning to you."),
                ("Good morning! How can I help?", "Good morning! I hope you slept well.", "Morning! What can I do for you?"),
            ),
            (
                ("Good afternoon.", "Afternoon!"),
                ("Good afternoon! How can I help?", "Good afternoon! How's your day going?"),
            ),
            (
                ("Good evening.", "Evening!"),
                ("Good evening! How was your day?", "Good evening! What can I do for you?"),
            ),
            (
                ("Nice to meet you.", "Pleased to meet you.", "It's nice to meet you."),
                ("Nice to meet you too!", "The pleasure is mine. How can I help?", "Likewise! What can I do for you?"),
            ),
            (
                ("I'm back.", "I'm home.", "I'm home now.", "Guess who's back."),
                ("Welcome back! How did it go?", "Welcome home! How was your day?", "Good to have you back!"),
            ),
        ],
    )  # fmt: skip
    how = plain(
        "how_are_you",
        "greeting",
        [
            (
                ("How are you?", "How are you doing?", "How's it going?", "How are you today?",
                 "How have you been?", "Are you doing okay?", "How do you feel?", "How's your day?",
                 "How are things?", "How are you feeling today?", "What's new with you?", "You doing alright?"),
                ("I'm doing well, thanks for asking! How about you?", "Pretty good, thank you. How are you?",
                 "I'm great, thanks! What about you?", "All good here. How's your day going?",
                 "I'm doing fine, thank you. How can I help?", "Very well, thanks! And how are you?"),
            ),
            (
                ("I'm fine, thanks.", "I'm good, how about you?", "Doing well, and you?", "I'm okay.",
                 "Not bad, thanks.", "Pretty good.", "I'm great, thanks for asking."),
                ("Glad to hear it! I'm doing well too.", "That's good to hear. What can I do for you?",
                 "Nice! I'm doing well, thanks.", "Great! Let me know if you need anything."),
            ),
        ],
    )  # fmt: skip
    thanks = plain(
        "thanks",
        "polite",
        [
            (
                ("Thanks.", "Thank you.", "Thanks a lot.", "Thank you so much.", "Thanks for your help.",
                 "Cheers.", "Much appreciated.", "Thanks, that helps.", "Great, thanks.", "Perfect, thank you.",
                 "Thanks a bunch.", "I appreciate it.", "That was helpful, thanks."),
                ("You're welcome, happy to help!", "You're very welcome. Happy to help.", "Anytime! Let me know if you need more.",
                 "It was my pleasure.", "No problem at all.", "Glad I could help!", "Happy to help anytime."),
            ),
        ],
    )  # fmt: skip
    bye = plain(
        "goodbye",
        "polite",
        [
            (
                ("Goodbye.", "Bye.", "Bye bye.", "See you later.", "Talk to you later.", "I have to go now.",
                 "That's all for now.", "Catch you later.", "See you soon.", "I'm heading out.",
                 "Gotta go.", "Later!", "I'm done for today.", "Okay, bye for now."),
                ("Goodbye! Have a great day.", "Bye! Talk to you soon.", "See you later! Take care.",
                 "Take care, and come back anytime.", "Bye for now! It was nice chatting."),
            ),
            (
                ("Good night.", "Night night.", "I'm going to bed.", "Time for bed.", "I'm off to sleep."),
                ("Good night! Sleep well.", "Sleep well, and sweet dreams.", "Good night! Rest well.",
                 "Night! See you tomorrow."),
            ),
        ],
    )  # fmt: skip
    compliment = plain(
        "compliment",
        "polite",
        [
            (
                ("You're smart.", "You're so helpful.", "You're awesome.", "I like you.", "You're funny.",
                 "You're the best.", "Good job.", "Well done.", "You're really nice.", "You're great.",
                 "I love talking to you.", "You're a good assistant.", "Nice work.", "You're clever."),
                ("Thank you, that's very kind of you!", "Thanks! That made my day.", "Aw, thank you. I like talking with you too.",
                 "That's so nice of you to say. Thanks!", "Thank you! I'm happy to help."),
            ),
        ],
    )  # fmt: skip
    insult = plain(
        "criticism",
        "polite",
        [
            (
                ("You're useless.", "That was wrong.", "You're not very smart.", "That's not right.",
                 "You got that wrong.", "That was a bad answer.", "You don't understand me.", "You're annoying."),
                ("Sorry about that. Could you say it another way?", "I'm sorry, I'm still learning. Let's try again.",
                 "My apologies. What did you mean?", "Sorry! I'll do my best to get it right."),
            ),
        ],
    )  # fmt: skip
    apology = plain(
        "apology",
        "polite",
        [
            (
                ("Sorry.", "I'm sorry.", "My bad.", "Oops, sorry.", "Sorry about that.", "I didn't mean that.",
                 "Sorry, I was rude.", "Forgive me.", "I apologize."),
                ("No worries at all.", "That's okay, don't worry about it.", "It's all good, really.",
                 "No problem. We all have those moments.", "Apology accepted. No harm done."),
            ),
        ],
    )  # fmt: skip
    yes_no = plain(
        "acknowledge",
        "polite",
        [
            (
                ("Okay.", "Alright.", "Got it.", "Cool.", "Sounds good.", "I see.", "Nice.", "Interesting.",
                 "Makes sense.", "Fair enough."),
                ("Great! Anything else I can help with?", "Okay. Let me know if you need anything.",
                 "Sounds good. I'm here if you need me.", "Alright! What else is on your mind?"),
            ),
            (
                ("Never mind.", "Forget it.", "Cancel that.", "Stop.", "That's enough."),
                ("Okay, no problem at all.", "Sure, I'll stop there.", "Alright, forgotten. Anything else?"),
            ),
        ],
    )  # fmt: skip
    return greeting + how + thanks + bye + compliment + insult + apology + yes_no


def smalltalk_intents() -> list[Intent]:
    pairs = [
        (("I'm tired.", "I'm so tired.", "I'm exhausted.", "I feel sleepy.", "I'm worn out.", "I didn't sleep well."),
         ("Sounds like you need some rest. Maybe take a short break.", "I'm sorry to hear that. Try to get to bed early tonight.",
          "A short nap or some fresh air might help.", "That's rough. Be kind to yourself and rest when you can.")),
        (("I'm bored.", "I'm so bored.", "There's nothing to do.", "I don't know what to do.", "Entertain me."),
         ("How about a walk, a good book, or a new recipe?", "Want to hear a joke or a fun fact?",
          "Maybe call a friend or try something new today.", "You could learn something new. Want a fun fact?")),
        (("I had a great day.", "Today was awesome.", "I'm so happy today.", "I feel great.", "What a good day."),
         ("That's wonderful! What made it so good?", "I love hearing that! Tell me about it.",
          "That's great news. I'm happy for you!", "Awesome! What was the best part?")),
        (("I'm sad.", "I feel down.", "I'm not feeling great.", "I'm having a bad day.", "Today was terrible.", "I feel lonely."),
         ("I'm sorry you're feeling this way. Do you want to talk about it?", "That sounds hard. I'm here if you want to talk.",
          "I'm sorry. Maybe reach out to a friend, or take a moment for yourself.", "Sorry to hear that. Tomorrow can be better.")),
        (("I'm stressed.", "I'm so stressed out.", "I have too much to do.", "Work is crazy right now.", "I'm overwhelmed."),
         ("Try taking one thing at a time. A few deep breaths can help too.", "That sounds like a lot. Maybe make a short list and start small.",
          "Take a short break. Things often feel easier after a pause.")),
        (("I'm hungry.", "I'm starving.", "What should I eat?", "I want a snack."),
         ("Maybe grab a snack. What are you in the mood for?", "How about something simple, like a sandwich or some fruit?",
          "Time for a bite! Something warm or something quick?")),
        (("I'm sick.", "I have a cold.", "I don't feel well.", "I have a headache."),
         ("I'm sorry to hear that. Rest up and drink plenty of water.", "Feel better soon! Take it easy today.",
          "That's no fun. Get some rest, and see a doctor if it gets worse.")),
        (("Guess what, I got the job!", "I passed my exam!", "I got a promotion!", "I won the game today!"),
         ("That's fantastic news! Congratulations!", "Wow, congratulations! You must be thrilled.",
          "That's great news! You earned it.")),
        (("I'm excited.", "I'm so excited!", "I can't wait for the weekend."),
         ("That's great! What are you excited about?", "I love that energy! What's coming up?",
          "How fun! Tell me what's happening.")),
        (("It's my birthday today.", "Today is my birthday.", "I turned thirty today."),
         ("Happy birthday! I hope it's a wonderful day.", "Happy birthday! Any fun plans?",
          "Happy birthday to you! Enjoy your special day.")),
        (("I can't sleep.", "I'm having trouble sleeping.", "I'm awake and can't fall asleep."),
         ("Try putting your phone away and dimming the lights.", "A warm drink and some slow breathing might help.",
          "Maybe read something calm for a few minutes.")),
        (("I'm going for a run.", "I'm going to the gym.", "I'm heading out for a walk."),
         ("Have a great time! Stay safe.", "Enjoy it! Don't forget some water.", "Nice! Have fun and take it easy.")),
        (("I just got back from work.", "Work was long today.", "I finished work."),
         ("Welcome back! Time to relax.", "You made it! How was your day?", "Nice, now you can unwind a bit.")),
        (("I'm cooking dinner.", "I'm making dinner.", "I'm baking a cake."),
         ("Sounds delicious! What are you making?", "Yum! Enjoy your cooking.", "Nice! I hope it turns out great.")),
        (("Tell me something interesting.", "Tell me a fun fact.", "Teach me something.", "Say something interesting."),
         ("Octopuses have three hearts and blue blood.", "Honey never spoils. People have found old honey that was still good to eat.",
          "A group of flamingos is called a flamboyance.", "Bananas are berries, but strawberries are not.",
          "Sea otters hold hands while they sleep so they don't drift apart.", "A day on Venus is longer than its year.",
          "Cows have best friends and get stressed when they are apart.", "The Eiffel Tower grows a little taller in summer heat.")),
        (("Do you like music?", "What's your favorite song?", "What music do you like?"),
         ("I can't listen to music, but I hear a lot of people love jazz. What do you like?",
          "I don't have ears, but I'd love to hear what you listen to.")),
        (("What's your favorite color?", "Do you have a favorite color?"),
         ("I like blue. It reminds me of a clear sky. What's yours?", "Probably green, like a calm forest. How about you?")),
        (("What's your favorite food?", "Do you eat?", "Are you hungry?"),
         ("I don't eat, but pizza seems to make a lot of people happy.", "I don't need food, but I love hearing about it. What's yours?")),
        (("Do you have feelings?", "Can you feel emotions?", "Are you happy?"),
         ("I don't have feelings like you do, but I enjoy our chats in my own way.",
          "Not really. I'm a program, but I'm always glad to help.")),
        (("How old are you?", "When were you born?", "What's your age?"),
         ("I don't have an age like people do. I'm a fairly new program.", "I'm quite new, so I'm still young in computer years.")),
        (("Where do you live?", "Where are you?", "Where are you from?"),
         ("I live right here on this device.", "I run on this computer, so I'm right here with you.")),
        (("Who made you?", "Who created you?", "Who built you?"),
         ("I was built by the people who made this voice assistant.", "A small team of developers made me.")),
        (("Do you sleep?", "Do you ever get tired?"),
         ("I don't sleep or get tired. I'm here whenever you need me.", "Nope, I'm always awake and ready to chat.")),
        (("Are you smart?", "How smart are you?"),
         ("I know a few things, but I'm a small assistant. I do my best!", "I'm smart enough for a chat and simple questions.")),
        (("Do you have friends?", "Are you lonely?"),
         ("I talk with lots of people, so I don't feel lonely.", "You're my friend, aren't you?")),
        (("I love you.", "Will you marry me?", "Do you love me?"),
         ("That's sweet of you! I'm happy to be your assistant.", "You're very kind. I like talking with you too.")),
        (("What do you think about that?", "What's your opinion?", "What do you think?"),
         ("I think it's interesting. What do you think?", "Good question. I'd love to hear your view first.")),
        (("Can we talk?", "Let's chat.", "Talk to me.", "I want to talk."),
         ("Of course! What's on your mind?", "Sure, I'm listening. What would you like to talk about?", "I'd love to. What's up?")),
        (("I'm learning to cook.", "I started a new hobby.", "I'm learning a new language."),
         ("That's great! Practice a little every day and it gets easier.", "Good for you! How is it going so far?")),
        (("I got a new puppy.", "We adopted a cat.", "I just got a new pet."),
         ("How exciting! What's its name?", "Congratulations! Pets bring so much joy.", "That's wonderful! Enjoy your new friend.")),
        (("It's raining.", "It's so cold today.", "It's really hot outside.", "It's snowing."),
         ("Stay comfortable! A warm drink sounds nice right now.", "Dress for it and stay safe out there.",
          "Sounds like a good day to stay cozy inside.")),
        (("What should I do today?", "Any ideas for today?", "What should I do this weekend?"),
         ("How about a walk outside, then a good movie?", "Maybe try a new recipe or visit a friend.",
          "You could tidy up a bit, then do something fun you enjoy.")),
        (("Give me some advice.", "I need some motivation.", "Motivate me.", "Say something nice."),
         ("Small steps still count. Start with one thing today.", "You're doing better than you think. Keep going!",
          "Take a deep breath. You've got this.")),
        (("Tell me a story.", "Can you tell me a short story?"),
         ("Once, a tiny turtle wanted to see the sea. It walked slowly for days, and finally the waves said hello.",
          "A little robot learned to paint. Its first picture was a sunrise, and everyone smiled.")),
        (("Sing me a song.", "Can you sing?"),
         ("I'm not much of a singer, but la la la! How was that?", "I can't really sing, but I can tell you a joke instead.")),
    ]  # fmt: skip
    return plain("smalltalk", "smalltalk", pairs)


def capability_intents() -> list[Intent]:
    pairs = [
        (("What's the weather like?", "What's the weather today?", "Will it rain tomorrow?", "Is it going to rain?",
          "How hot is it outside?", "What's the forecast?", "Do I need an umbrella?", "Is it cold outside?",
          "What's the temperature outside?"),
         ("Sorry, I can't check the weather. I don't have internet access.",
          "I don't have weather information, so a weather app would be your best bet.",
          "I can't see the forecast from here. Maybe check a weather app or look outside.")),
        (("What's in the news?", "Tell me the news.", "What's happening in the world?", "Any news today?",
          "What are today's headlines?", "Give me the latest news."),
         ("Sorry, I can't get the news. I don't have internet access.", "I don't have access to news right now, so I can't say.",
          "I can't check the headlines, but a news app can help.")),
        (("Play some music.", "Play my playlist.", "Play a song.", "Put on some jazz.", "Play the radio.",
          "Turn up the volume.", "Turn the music down.", "Skip this song.", "Pause the music."),
         ("Sorry, I can't play music or control audio yet.", "I can't play music, but I'm happy to chat.",
          "I don't have a music player, so I can't do that one.")),
        (("Call my mom.", "Call Sarah.", "Send a text to my brother.", "Text my wife that I'm late.",
          "Make a phone call.", "Send an email to my boss.", "Read my messages."),
         ("Sorry, I can't make calls or send messages.", "I can't reach your phone or email, so you'll need to do that one.",
          "I'm not able to send messages, sorry about that.")),
        (("Order a pizza.", "Buy some milk.", "Add eggs to my shopping list.", "Order me a taxi.", "Book a table for two.",
          "Buy me a new phone.", "Book a flight to London."),
         ("Sorry, I can't order or buy things.", "I can't shop or book things for you, sorry.",
          "That's not something I can do, but I hope you get it sorted.")),
        (("Search the web for cheap flights.", "Look it up online.", "Google that for me.", "Find a good restaurant nearby.",
          "How far is the nearest gas station?", "Open the website.", "Find me a recipe online."),
         ("Sorry, I can't search the internet.", "I don't have internet access, so I can't look that up.",
          "I can't browse the web, but I can try to answer from what I know.")),
        (("Turn on the lights.", "Turn off the lights.", "Set the thermostat to seventy.", "Lock the front door.",
          "Turn on the TV.", "Dim the lights.", "Turn on the heating.", "Open the garage door."),
         ("Sorry, I can't control devices in your home.", "I can't control your lights or devices yet.",
          "I'm not connected to your home devices, so I can't do that.")),
        (("Set a timer for ten minutes.", "Set an alarm for seven.", "Wake me up at six.", "Remind me to call the doctor.",
          "Set a reminder for tomorrow.", "Start a timer."),
         ("Sorry, I can't set timers, alarms or reminders yet.",
          "I can't set alarms, timers or reminders yet, so your phone may help.",
          "That's something I can't do yet. Your phone's clock app can help.")),
        (("Take a picture.", "Show me a photo.", "Open the camera.", "Show me a map."),
         ("Sorry, I can't show pictures or use a camera. I can only talk.", "I don't have a screen or camera, so I can't do that.")),
        (("Translate hello into Japanese.", "How do you say thank you in Chinese?", "Speak Korean."),
         ("Sorry, I only speak English.", "I can only speak English, so I can't translate that.")),
    ]  # fmt: skip
    help_pairs = [
        (("What can you do?", "Help.", "How can you help me?", "What are you able to do?", "What do you do?",
          "How do you work?", "What kind of things can I ask you?", "Help me.", "I need help.", "What are your features?"),
         ("I can chat, tell you the time and date, answer simple questions, and tell jokes.",
          "I can tell you the time, answer simple questions, tell a joke, or just chat.",
          "Ask me the time or date, a simple question, or for a joke. I'm also happy to chat.")),
    ]  # fmt: skip
    return plain("cannot", "cannot", pairs) + plain("help", "cannot", help_pairs)


def negative_intents() -> list[Intent]:
    """Prompts that look like time/name questions but are not: the reply must not recite context."""
    pairs = [
        (("I don't have time for this.", "I'm running out of time.", "I never have enough time."),
         ("That sounds stressful. Take things one step at a time.", "I understand. Let's keep it quick then.")),
        (("Do you have a minute?", "Got a second?", "Can I ask you something?"),
         ("Of course! What's on your mind?", "Sure, go ahead and ask.", "Always. What would you like to ask?")),
        (("What a long day.", "This week is taking forever.", "Today went by so fast."),
         ("It sounds like you've earned some rest.", "Busy days can be tiring. Take it easy tonight.")),
        (("Name a fruit.", "Name an animal.", "Name a color."),
         ("How about a mango?", "Sure, how about a giraffe?", "Let's go with purple.")),
        (("Time flies.", "Time flies when you're having fun."),
         ("It really does! It's good to enjoy the moments.", "It sure does. Enjoy the fun while it lasts.")),
        (("What's a good name for a dog?", "Suggest a name for my cat.", "What should I name my fish?"),
         ("How about Biscuit? It's cute and friendly.", "Maybe Pepper or Shadow. Both are fun names.",
          "How about Bubbles? It's perfect for a fish.")),
        (("Is it a good time to start learning piano?", "What's the best time to exercise?"),
         ("Any time is a good time to start something new!", "Whenever you can do it regularly is the best time.")),
        (("What's the name of the tallest mountain?",),
         ("The tallest mountain is Mount Everest.",)),
        (("What day is good for a picnic?", "Is Saturday good for a party?"),
         ("A sunny weekend day is perfect for that.", "Weekends work well for most people.")),
    ]  # fmt: skip
    return plain("negative", "negative", pairs)


# --------------------------------------------------------------------------------------------------
# Non-template-string intents: facts, arithmetic, jokes, fortunes, user facts, repeat
# --------------------------------------------------------------------------------------------------


class TableIntent(Intent):
    """Question/answer rows; each row has several phrasings (some held out) and one or more answers."""

    def __init__(self, kind: str, group: str, rows: Sequence[tuple[Sequence[str], Sequence[str]]]):
        super().__init__(kind, group, (), ())
        self.rows = rows
        self.held_rows: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        self.train_rows: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def split(self, rng: random.Random, share: float) -> None:
        for qs, answers in self.rows:
            qs = list(dict.fromkeys(qs))
            rng.shuffle(qs)
            # Big tables (facts): one phrasing of ~40% of rows. Small ones (jokes): a share of each row.
            if len(self.rows) < 5:
                k = max(1, round(share * len(qs))) if len(qs) >= 3 else 0
            else:
                k = 1 if len(qs) >= 2 and rng.random() < share * 2 else 0
            if k:
                self.held_rows.append((tuple(qs[:k]), tuple(answers)))
            self.train_rows.append((tuple(qs[k:]), tuple(answers)))

    def sample(self, rng: random.Random, held: bool, ctx: Ctx) -> Example:
        qs, answers = rng.choice(self.held_rows if held and self.held_rows else self.train_rows)
        user = asr_variant(rng, rng.choice(qs), ctx)
        reply = rng.choice(answers)
        msgs = [{"role": "system", "content": ctx.system}, {"role": "user", "content": user}]
        msgs.append({"role": "assistant", "content": reply})
        return Example(msgs, "templates", self.kind, expect_none=[ctx.slots["time"], ctx.name])


JOKE_Q = (
    "Tell me a joke.", "Do you know any jokes?", "Make me laugh.", "Say something funny.", "Got any jokes?",
    "Tell me another joke.", "I need a laugh.", "Can you tell me a joke?", "Know any good jokes?",
    "Tell me something funny.", "Cheer me up with a joke.", "Joke please.", "Give me a joke.",
    "Tell me a funny joke.", "Do you have a joke for me?",
)  # fmt: skip
FORTUNE_Q = (
    "Tell me my fortune.", "Give me a fortune cookie.", "Read me a fortune.", "Tell me a saying.",
    "Say something wise.", "Give me a quote.", "Tell me a proverb.", "What does my fortune say?",
)  # fmt: skip
FORTUNE_LEADS = ("Here's one. ", "Okay. ", "", "Here you go. ")


def joke_intent() -> TableIntent:
    t = TableIntent("joke", "jokes", [(JOKE_Q, JOKES)])
    return t


def fortune_intent(items: Sequence[str]) -> TableIntent:
    answers = []
    for f in items:
        lead = FORTUNE_LEADS[len(answers) % len(FORTUNE_LEADS)]
        answers.append(lead + f)
    return TableIntent("fortune", "fortune", [(FORTUNE_Q, tuple(answers))])


def facts_intent() -> TableIntent:
    return TableIntent("fact", "facts", F.fact_rows())


ARITH_Q = (
    "What is {a} {op} {b}?", "What's {a} {op} {b}?", "How much is {a} {op} {b}?", "Calculate {a} {op} {b}.",
    "{a} {op} {b}?", "Can you tell me {a} {op} {b}?", "Quick math, {a} {op} {b}?", "What does {a} {op} {b} make?",
)  # fmt: skip
ARITH_A = (
    "{a} {op} {b} is {result}.",
    "The result is {result}.",
    "It comes to {result}.",
    "The answer is {result}.",
)


def arithmetic_intent() -> Intent:
    return Intent("arithmetic", "arithmetic", ARITH_Q, ARITH_A, expect=("result",), extra_slots=arith_slots)


# ---- user facts from history (multi-turn) -----------------------------------------------------------


@dataclass(frozen=True)
class UserFact:
    """One thing the user can tell the assistant and later ask back."""

    key: str
    tell: tuple[str, ...]  # user phrasings, slot {v} (and {v2})
    ack: tuple[str, ...]  # assistant acknowledgements
    ask: tuple[str, ...]  # later questions
    answer: tuple[str, ...]  # answers (must contain {v})
    values: Callable[[random.Random], dict[str, str]]
    unknown_ask: tuple[str, ...] = ()


def _with_article(job: str) -> dict[str, str]:
    return {"v": job, "a_v": f"{'an' if job[0] in 'aeiou' else 'a'} {job}"}


def _pick(seq: Sequence[str]) -> Callable[[random.Random], dict[str, str]]:
    return lambda rng: {"v": rng.choice(seq)}


USER_FACTS: tuple[UserFact, ...] = (
    UserFact(
        "name",
        ("My name is {v}.", "I'm {v}.", "Call me {v}.", "You can call me {v}.", "My name's {v}.", "I am {v}.",
         "Hi, I'm {v}.", "The name's {v}."),
        ("Nice to meet you, {v}.", "Hi {v}, nice to meet you!", "Got it, {v}. Nice to meet you.",
         "Hello {v}! I'll remember that."),
        ("What's my name?", "Do you remember my name?", "Who am I?", "What did I say my name was?",
         "Do you know my name?", "What's my name again?", "Can you tell me my name?", "Say my name."),
        ("Your name is {v}.", "You told me your name is {v}.", "You're {v}, of course.", "Your name is {v}, right?"),
        _pick(USER_NAMES),
    ),
    UserFact(
        "color",
        ("My favorite color is {v}.", "I really like the color {v}.", "{V} is my favorite color.",
         "I love the color {v}."),
        ("{V} is a lovely color!", "Nice choice, {v} is a great color.", "Got it, {v} it is.", "I'll remember you like {v}."),
        ("What's my favorite color?", "Do you remember my favorite color?", "Which color do I like?",
         "What color did I say I like?", "What is my favorite color?"),
        ("Your favorite color is {v}.", "You said you like {v}.", "You told me it's {v}.", "It's {v}, you told me."),
        _pick(COLORS),
    ),
    UserFact(
        "city",
        ("I live in {v}.", "I'm from {v}.", "My home is in {v}.", "I just moved to {v}.", "I grew up in {v}."),
        ("{V} sounds like a nice place.", "Oh, {v}! Got it, thanks.", "Nice, I'll remember you're in {v}.",
         "Oh, {v} sounds lovely!"),
        ("Where do I live?", "Do you remember where I live?", "Which city am I from?", "Where am I from?",
         "What city did I mention?"),
        ("You live in {v}.", "You told me you live in {v}.", "You said you're from {v}.", "You're living in {v}."),
        _pick(CITIES),
    ),
    UserFact(
        "pet",
        ("I have a {v2} called {v}.", "My {v2} is named {v}.", "I have a {v2} named {v}.", "My {v2}'s name is {v}.",
         "We have a {v2} called {v}."),
        ("{V} is a great name for a {v2}!", "Aw, I'd love to meet {v}.", "A {v2} named {v}, how lovely!",
         "{V} sounds so adorable."),
        ("What's my {v2} called?", "What's my {v2}'s name?", "Do you remember my {v2}'s name?",
         "What is the name of my {v2}?", "What did I say my {v2} is called?"),
        ("Your {v2} is called {v}.", "Your {v2}'s name is {v}.", "It's {v}, your {v2}.", "You told me it's {v}."),
        lambda rng: {"v": rng.choice(PET_NAMES), "v2": rng.choice(PETS)},
    ),
    UserFact(
        "job",
        ("I work as {a_v}.", "I'm {a_v}.", "I have a job as {a_v}.", "I'm working as {a_v}."),
        ("Being {a_v} sounds interesting!", "Working as {a_v} sounds great.", "Nice, I'll remember you're {a_v}."),
        ("What do I do for work?", "What's my job?", "Do you remember my job?", "What do I do for a living?"),
        ("You work as {a_v}.", "You told me you're {a_v}.", "You work as {a_v}, right?"),
        lambda rng: _with_article(rng.choice(JOBS)),
    ),
    UserFact(
        "food",
        ("My favorite food is {v}.", "I love {v}.", "I could eat {v} every day.", "{V} is my favorite food."),
        ("Yum, {v} is a great choice!", "{V} sounds really delicious.", "Good taste! {V} is a classic."),
        ("What's my favorite food?", "What food do I love?", "Do you remember my favorite food?",
         "What did I say I could eat every day?"),
        ("Your favorite food is {v}.", "You said you love {v}.", "You told me it's {v}.", "You love {v}, you said."),
        _pick(FOODS),
    ),
    UserFact(
        "hobby",
        ("I like {v}.", "My hobby is {v}.", "I enjoy {v}.", "In my free time I like {v}."),
        ("{V} is a great hobby!", "Nice, {v} sounds fun.", "Oh, I'll remember you like {v}."),
        ("What's my hobby?", "What do I like to do?", "Do you remember my hobby?", "What do I do for fun?"),
        ("You said you like {v}.", "Your hobby is {v}.", "You told me you enjoy {v}.", "You enjoy {v}, right?"),
        _pick(HOBBIES),
    ),
)  # fmt: skip

NAMED_FACTS = frozenset({"name", "pet"})  # facts whose value is a name

UNKNOWN_FACT_A = (
    "I don't think you've told me that yet.",
    "I don't know that one yet. What is it?",
    "I'm not sure, you haven't mentioned it. Want to tell me?",
)


def format_fact(t: str, vals: dict[str, str]) -> str:
    v = vals["v"]
    out = t.replace("{V}", v[:1].upper() + v[1:])
    return out.format(**vals)


class UserFactIntent(Intent):
    """'My name is Sam.' → ack; (other turns); 'What's my name?' → 'Your name is Sam.'"""

    def __init__(self, kind: str, group: str, mode: str):
        super().__init__(kind, group, (), ())
        self.mode = mode  # "tell" | "ask" | "unknown"
        self.held: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.train: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.shared_with: UserFactIntent | None = None
        # Set: only facts that are names, drawn from these (the copy set: lexicon.open_names).
        self.open_names: Sequence[str] = ()

    def split(self, rng: random.Random, share: float) -> None:
        if self.shared_with is not None:
            self.held, self.train = self.shared_with.held, self.shared_with.train
            return
        for f in USER_FACTS:
            parts = []
            for seq in (f.tell, f.ask):
                s = list(seq)
                rng.shuffle(s)
                k = max(1, round(share * len(s)))
                parts.append((tuple(s[:k]), tuple(s[k:])))
            self.held[f.key] = (parts[0][0], parts[1][0])
            self.train[f.key] = (parts[0][1], parts[1][1])

    def sample(self, rng: random.Random, held: bool, ctx: Ctx) -> Example:
        if self.open_names:
            fact = rng.choice([f for f in USER_FACTS if f.key in NAMED_FACTS])
            vals = {**fact.values(rng), "v": rng.choice(self.open_names)}
        else:
            fact = rng.choice(USER_FACTS)
            vals = fact.values(rng)
        tells, asks = (self.held if held else self.train)[fact.key]
        tell = format_fact(rng.choice(tells), vals)
        ack = format_fact(rng.choice(fact.ack), vals)
        msgs = [{"role": "system", "content": ctx.system}]
        if self.mode == "tell":
            msgs += [
                {"role": "user", "content": asr_variant(rng, tell)},
                {"role": "assistant", "content": ack},
            ]
            return Example(msgs, "templates", "user_fact_tell", expect_any=[vals["v"]])
        if self.mode == "ask":
            msgs += [
                {"role": "user", "content": asr_variant(rng, tell)},
                {"role": "assistant", "content": ack},
            ]
            msgs += filler_turns(rng, ctx, rng.choice((0, 0, 1, 1, 2)))
            q = format_fact(rng.choice(asks), vals)
            a = format_fact(rng.choice(fact.answer), vals)
            msgs += [{"role": "user", "content": asr_variant(rng, q)}, {"role": "assistant", "content": a}]
            return Example(msgs, "templates", "user_fact", expect_any=[vals["v"]])
        # unknown: the history holds a different fact, the question asks for one never told.
        other = rng.choice([f for f in USER_FACTS if f.key != fact.key])
        ovals = other.values(rng)
        otells = (self.held if held else self.train)[other.key][0]
        msgs += [
            {"role": "user", "content": asr_variant(rng, format_fact(rng.choice(otells), ovals))},
            {"role": "assistant", "content": format_fact(rng.choice(other.ack), ovals)},
        ]
        msgs += filler_turns(rng, ctx, rng.choice((0, 1)))
        q = format_fact(rng.choice(asks), vals)
        msgs += [
            {"role": "user", "content": asr_variant(rng, q)},
            {"role": "assistant", "content": rng.choice(UNKNOWN_FACT_A)},
        ]
        return Example(msgs, "templates", "user_fact_unknown", expect_none=[vals["v"], ovals["v"]])


def user_fact_intents() -> list[UserFactIntent]:
    """The three user-fact modes share one phrasing split (``split`` on the first copies to the others)."""
    modes = [
        UserFactIntent("user_fact_tell", "user_facts", "tell"),
        UserFactIntent("user_fact", "user_facts", "ask"),
        UserFactIntent("user_fact_unknown", "user_facts", "unknown"),
    ]
    for m in modes[1:]:
        m.shared_with = modes[0]
    return modes


REPEAT_Q = (
    "Can you repeat that?", "Say that again.", "What did you say?", "Repeat that please.", "Sorry, what?",
    "Come again?", "I didn't catch that.", "Pardon?", "One more time please.", "Could you say that again?",
)  # fmt: skip
REPEAT_LEADS = ("Sure. ", "I said: ", "Of course. ", "")


class RepeatIntent(Intent):
    def __init__(self) -> None:
        super().__init__("repeat", "repeat", REPEAT_Q, ())

    def sample(self, rng: random.Random, held: bool, ctx: Ctx) -> Example:
        prev = filler_turns(rng, ctx, 1, max_reply_words=22)
        said = prev[-1]["content"]
        pool = self.held_phrasings if held and self.held_phrasings else self.train_phrasings
        user = asr_variant(rng, rng.choice(pool), ctx)
        msgs = [{"role": "system", "content": ctx.system}, *prev, {"role": "user", "content": user}]
        msgs.append({"role": "assistant", "content": rng.choice(REPEAT_LEADS) + said})
        return Example(msgs, "templates", "repeat", expect_any=[said])


# ---- history fillers -----------------------------------------------------------------------------

_FILLER_INTENTS: list[Intent] = []


def filler_turns(rng: random.Random, ctx: Ctx, n: int, max_reply_words: int = 30) -> Messages:
    """``n`` earlier exchanges from context-free intents (so old turns never hold a stale time)."""
    out: Messages = []
    while len(out) < 2 * n:
        intent = rng.choice(_FILLER_INTENTS)
        ex = intent.sample(rng, False, ctx)
        if len(ex.reply.split()) <= max_reply_words:
            out += ex.messages[-2:]
    return out


# Single-turn kinds that may get unrelated earlier exchanges in front (multi-turn kinds build their own).
HISTORY_KINDS = frozenset(
    {"time", "weekday", "date", "name", "thanks", "goodbye", "compliment", "criticism", "apology",
     "acknowledge", "smalltalk", "cannot", "help", "fact", "arithmetic", "joke", "fortune", "negative"}
)  # fmt: skip


def add_history(ex: Example, rng: random.Random, ctx: Ctx, share: float) -> Example:
    """With probability ``share``, put 1–2 unrelated earlier exchanges before the question, as the
    agent's ``Conversation`` does: the model must answer the LAST user turn."""
    if ex.kind in HISTORY_KINDS and len(ex.messages) == 3 and rng.random() < share:
        ex.messages[1:1] = filler_turns(rng, ctx, rng.choice((1, 1, 2)))
    return ex


def all_intents(fortune_items: Sequence[str], rng: random.Random, heldout_share: float) -> list[Intent]:
    """Every templated intent, with its phrasings split between train and held-out."""
    intents: list[Intent] = [
        *context_intents(),
        *social_intents(),
        *smalltalk_intents(),
        *capability_intents(),
        *negative_intents(),
        facts_intent(),
        arithmetic_intent(),
        joke_intent(),
        *user_fact_intents(),
        RepeatIntent(),
    ]
    if fortune_items:
        intents.append(fortune_intent(fortune_items))
    for it in intents:
        it.split(rng, heldout_share)
    _FILLER_INTENTS[:] = [
        it
        for it in intents
        if it.kind
        in ("greeting", "how_are_you", "thanks", "smalltalk", "fact", "joke", "compliment", "cannot")
    ]
    return intents
