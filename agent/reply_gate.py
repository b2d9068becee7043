"""The reply gate: judge a reply before a word of it is spoken (sans-I/O).

Plain inputs in — the reply, the user's message, the system context, the per-token probabilities the
model revealed it with, the retrieved draft — and a verdict out. Cheap signals (all ≪ 1 ms):

  * how sure the model was: the lowest and mean log probability of the reply's tokens at commit time;
  * form: words in no lexicon (``/usr/share/dict/words`` + the conversation's own words), doubled
    words and word pairs, a sentence that starts in lower case or ends on "the"/"of"/"if", function
    words in a row ("capital of is"), punctuation slips (",," " ."), no end punctuation (cut off);
  * content that fails the conversation: a question answered only with its own words ("The capital is
    Italy."), context sentences copied back, a time or weekday the context does not hold, a time or sum
    nobody asked for, cheer at sad news, a greeting or question at a goodbye;
  * a retrieved draft's agreement with the reply: said as written, or nearly (a broken copy).

A logistic scorer (``reply_gate.json``, fitted by ``recipe/reply_gate_fit.py`` on blind-labelled
replies) turns them into P(garbled or wrong); at or above its threshold the reply is blocked. Each
signal's weight is in the file, so a verdict names the signals that decided it.

``honest_reply`` gives the last candidate of the fallback chain: a short true reply that fits the kind
of request ("I'm not sure about that one." for a question).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from importlib import resources
from pathlib import Path

SYSTEM_WORDS = Path("/usr/share/dict/words")  # wamerican: a Debian package the agent's image installs
GATE_FILE = "reply_gate.json"

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
_SENTENCE_END = re.compile(r"[.!?]+")
_PUNCT_SLIP = re.compile(r",\s*[,.!?]|\.\s*[,.]|\s[,.!?;:]|^\s*[,.!?;:]")
_LOWER_START = re.compile(r"[.!?]\s+[a-z]")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_DIGITS = re.compile(r"\d")


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words a sentence cannot end on ("Let me know if you." ends on "you", which can; "is the" cannot).
_NO_END = _set(
    "the a an and or but of to in at with from by as than if is are was were my your their our its "
    "his her this these those very because into about"
)
# A word of the first set followed by one of the second is broken grammar ("capital of is", "a the").
_LEFT = _set("the a an my your their our of to")
_RIGHT = _set("is are was were the a an of to and . , ! ?")
_STOP = _set(
    "a an the is are was were be been am i i'm you you're your my me we our it it's its this that these "
    "those of to in on at for with and or but so do does did what what's whats which who whom whose "
    "where when why how can could would should will shall may might must there here there's then than "
    "as by from about into not no yes please tell me us he she they them his her their just really "
    "very some any all one"
)
_QUESTION_START = _set(
    "what what's whats which who who's whose where where's when why how how's is are was were do does "
    "did can could would will should have has tell name"
)
_SAD = _set(
    "sad nervous lonely stressed stress worried worry anxious scared afraid tired exhausted sick ill "
    "angry upset died dead death lost lose losing hurt hurts hate bored depressed down miss broke "
    "crying cry fired failed fail awful terrible bad homesick overwhelmed frustrated rough"
)
_CHEER = _set(
    "great awesome thrilled wonderful congratulations congrats fantastic amazing glad exciting excited "
    "fun best yay brilliant"
)
_FAREWELL = ("bye", "goodbye", "good night", "goodnight", "see you", "see ya", "talk to you later",
             "talk later", "catch you later", "leave you")  # fmt: skip
_GREETING = _set("hello hi hey greetings morning")
_TIME_WORDS = _set("time clock o'clock hour hours minute minutes late early now")
_DATE_WORDS = _set("date day today tomorrow yesterday weekday week month year")
_WEEKDAYS = _set("monday tuesday wednesday thursday friday saturday sunday")
_MONTHS = _set("january february march april may june july august september october november december")
_MATH_WORDS = _set(
    "plus minus times divided multiplied sum add subtract percent half double twice how many much "
    "number count"
)
_SPOKEN = _set("ok okay hmm mm uh um oh ah wow yeah yep nope hey hi bye pm am")

FEATURES: tuple[str, ...] = (
    "empty",
    "min_logp",
    "mean_logp",
    "low_frac",
    "nonwords",
    "repeats",
    "lower_start",
    "dangling_end",
    "bad_pairs",
    "punct_slips",
    "no_end_punct",
    "echo_question",
    "context_copy",
    "context_mismatch",
    "unasked_time",
    "unasked_number",
    "cheer_on_sad",
    "farewell_mismatch",
    "has_draft",
    "draft_agreement",
    "draft_exact",
    "draft_near_miss",
    "recalls_user",
)


class GateError(ValueError):
    """The gate's weights file is missing or does not match the signals this code computes."""


@dataclass(frozen=True)
class GateInput:
    """What the gate judges: plain values, no model objects."""

    reply: str
    user: str  # the message the reply answers
    context: str = ""  # the system message (name, date, time, memory)
    history: Sequence[str] = ()  # earlier turns' text (their words are not non-words)
    token_probs: Sequence[float] | None = None  # per reply token; None: not model output (a draft)
    draft: str | None = None  # the retrieved draft, as filled for this conversation


@dataclass(frozen=True)
class Verdict:
    passed: bool
    score: float  # P(garbled or wrong) from the logistic scorer
    signals: dict[str, float]
    reasons: tuple[str, ...]  # the signals that pushed the score up most, strongest first


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


@lru_cache(maxsize=1)
def system_lexicon() -> frozenset[str]:
    """Lower-case words of the system dictionary (possessive forms dropped: "'s" is stripped when
    checking). Empty when the file is missing: then only the conversation's words are known, and every
    other word counts as a non-word — the gate refuses rather than guesses (see ``Lexicon.load``)."""
    if not SYSTEM_WORDS.is_file():
        return frozenset()
    return frozenset(w.strip().lower() for w in SYSTEM_WORDS.read_text(errors="replace").split("\n") if w)


@dataclass(frozen=True)
class Lexicon:
    words: frozenset[str]

    @classmethod
    def load(cls, extra: Iterable[str] = ()) -> Lexicon:
        base = system_lexicon()
        if not base:
            raise GateError(
                f"no word list at {SYSTEM_WORDS}: the reply gate needs it (Debian/Ubuntu: apt install "
                "wamerican), or run with --set gate.enabled=false"
            )
        return cls(base | _SPOKEN | {w.lower() for w in extra})

    def nonwords(self, reply_words: Sequence[str], known: set[str]) -> int:
        """Words neither in the lexicon nor in ``known`` (lower case); a letter-digit mix ("in6") and a
        lone letter other than "a"/"I" ("is B.") are never words."""
        count = 0
        for w in reply_words:
            low = w.lower().replace("’", "'")
            if low.isdigit():
                continue
            if _DIGITS.search(low) or (len(low) == 1 and low not in ("a", "i")):
                count += 1
                continue
            stem = low[:-2] if low.endswith("'s") else low
            if low in self.words or stem in self.words or low in known or stem in known:
                continue
            count += 1
        return count


def _content(words: Iterable[str]) -> list[str]:
    return [w.lower() for w in words if w.lower() not in _STOP and not w.isdigit()]


def _is_question(user: str) -> bool:
    ws = [w.lower() for w in words_of(user)]
    return user.strip().endswith("?") or (bool(ws) and ws[0] in _QUESTION_START)


def _has_phrase(text: str, phrases: Iterable[str]) -> bool:
    low = " " + " ".join(w.lower() for w in words_of(text)) + " "
    return any(f" {p} " in low for p in phrases)


def _repeats(ws: Sequence[str]) -> int:
    low = [w.lower() for w in ws]
    doubled = sum(a == b for a, b in zip(low, low[1:]))
    pairs = list(zip(low, low[1:]))
    seen: set[tuple[str, str]] = set()
    again = 0
    for p in pairs:
        if p in seen and not (set(p) <= _STOP):
            again += 1
        seen.add(p)
    return doubled + again


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def signals(inp: GateInput, lexicon: Lexicon) -> dict[str, float]:
    """Every signal in ``FEATURES`` for one reply (counts, fractions, log probabilities, 0/1 flags)."""
    reply = inp.reply.strip()
    ws = words_of(reply)
    low = [w.lower() for w in ws]
    user_ws = [w.lower() for w in words_of(inp.user)]
    known = set(user_ws) | {w.lower() for w in words_of(inp.context)}
    for h in inp.history:
        known |= {w.lower() for w in words_of(h)}
    s: dict[str, float] = dict.fromkeys(FEATURES, 0.0)
    if not ws:
        s["empty"] = 1.0
        return s
    # How sure the model was. No probabilities (a draft as written, a fixed reply): fully sure.
    probs = [p for p in (inp.token_probs or ()) if not math.isnan(p)]
    if probs:
        logs = [math.log(max(p, 1e-6)) for p in probs]
        s["min_logp"] = min(logs)
        s["mean_logp"] = sum(logs) / len(logs)
        s["low_frac"] = sum(p < 0.2 for p in probs) / len(probs)
    s["nonwords"] = lexicon.nonwords(ws, known)
    s["repeats"] = _repeats(ws)
    s["lower_start"] = float(reply[:1].islower()) + len(_LOWER_START.findall(reply))
    s["dangling_end"] = sum(
        (sw := words_of(sent)) != [] and sw[-1].lower() in _NO_END for sent in _sentences(reply)
    )
    tokens = [t.lower() for t in re.findall(r"[A-Za-z0-9']+|[.,!?]", reply)]
    s["bad_pairs"] = sum(a in _LEFT and b in _RIGHT for a, b in zip(tokens, tokens[1:]))
    s["punct_slips"] = len(_PUNCT_SLIP.findall(reply))
    s["no_end_punct"] = float(reply[-1] not in ".!?")
    reply_content = _content(ws)
    if _is_question(inp.user) and reply_content:
        s["echo_question"] = float(set(reply_content) <= set(user_ws))
    # A question about the user answered with a word they said earlier (or the context's memory holds),
    # not one from the question: "Your name is Tomasz." after "Hi, I'm Tomasz." ... "Who am I?".
    about_user = _is_question(inp.user) and bool(set(user_ws) & {"my", "i", "me", "i'm", "im"})
    earlier = {w.lower() for h in inp.history for w in words_of(h)} | {
        w.lower() for w in words_of(inp.context)
    }
    s["recalls_user"] = float(about_user and any(w in earlier and w not in user_ws for w in reply_content))
    context_sentences = {" ".join(words_of(c)).lower() for c in _sentences(inp.context)}
    s["context_copy"] = sum(" ".join(words_of(r)).lower() in context_sentences for r in _sentences(reply))
    context_low = inp.context.lower()
    times = [m.group(0) for m in _TIME.finditer(reply)]
    s["context_mismatch"] = sum(t not in inp.context for t in times) + sum(
        w in _WEEKDAYS and w not in context_low and w not in user_ws for w in low
    )
    asked_time = bool(set(user_ws) & (_TIME_WORDS | _DATE_WORDS)) or "when" in user_ws
    mentions_time = bool(times) or any(w in _WEEKDAYS or w in _MONTHS for w in low)
    s["unasked_time"] = float(mentions_time and not asked_time)
    asked_number = bool(set(user_ws) & _MATH_WORDS) or any(_DIGITS.search(w) for w in user_ws)
    numbers = [w for w in ws if _DIGITS.search(w)]
    s["unasked_number"] = float(bool(numbers) and not times and not asked_number)
    s["cheer_on_sad"] = float(bool(set(user_ws) & _SAD) and bool(set(low) & _CHEER))
    farewell = says_goodbye(inp.user)
    s["farewell_mismatch"] = float(farewell and ("?" in reply or bool(set(low) & _GREETING)))
    if inp.draft:
        s["has_draft"] = 1.0
        draft_low = [w.lower() for w in words_of(inp.draft)]
        agreement = SequenceMatcher(a=draft_low, b=low, autojunk=False).ratio()
        s["draft_agreement"] = agreement
        s["draft_exact"] = float(agreement == 1.0)
        # Most of the draft with a few words changed: the model's edits to a good reply are where
        # broken copies come from ("The there!" for "Hi there!").
        s["draft_near_miss"] = float(0.5 <= agreement < 1.0)
    return s


@dataclass(frozen=True)
class GateModel:
    """A logistic scorer over ``FEATURES``: P(bad) = σ(bias + Σ wᵢ·xᵢ); block when P ≥ threshold."""

    weights: Mapping[str, float]
    bias: float
    threshold: float
    meta: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> GateModel:
        """The fitted weights (default: the ones shipped beside this module)."""
        src = Path(path) if path else Path(str(resources.files("agent").joinpath(GATE_FILE)))
        if not src.is_file():
            raise GateError(
                f"reply gate weights not found: {src} (python -m recipe.reply_gate_fit writes them)"
            )
        data = json.loads(src.read_text())
        missing = [f for f in data.get("weights", {}) if f not in FEATURES]
        if missing:
            raise GateError(f"{src}: weights for unknown signals {missing}; known: {', '.join(FEATURES)}")
        return cls(data["weights"], float(data["bias"]), float(data["threshold"]), data.get("meta", {}))

    def score(self, s: Mapping[str, float]) -> float:
        z = self.bias + sum(w * s.get(f, 0.0) for f, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def judge(self, s: Mapping[str, float], threshold: float | None = None) -> Verdict:
        p = self.score(s)
        limit = self.threshold if threshold is None else threshold
        # An empty reply is never spoken, whatever the weights say.
        passed = p < limit and not s.get("empty")
        pushes = sorted(
            ((w * s.get(f, 0.0), f) for f, w in self.weights.items() if w * s.get(f, 0.0) > 0),
            reverse=True,
        )
        reasons = tuple(f for _, f in pushes[:3]) if not passed else ()
        if s.get("empty"):
            reasons = ("empty",)
        return Verdict(passed, round(p, 4), dict(s), reasons)


# -- the fallback chain's last candidate -----------------------------------------------------------------
HONEST_REPLIES: dict[str, str] = {
    "question": "I'm not sure about that one.",
    "request": "Sorry, I can't do that.",
    "sad": "I'm sorry to hear that. I'm here if you want to talk.",
    "happy": "That's lovely to hear!",
    "statement": "I see. Tell me more about it.",
    "greeting": "Hi! How can I help?",
    "how_are_you": "I'm doing well, thanks! How are you?",
    "farewell": "Goodbye! Talk to you soon.",
    "thanks": "You're welcome!",
    "unclear": "Sorry, could you put that another way?",
}
# Verbs that open a command the agent cannot carry out (it has no tools): "Call my mum."
_REQUEST_VERBS = _set(
    "turn switch set play call text send order book buy open close remind schedule start stop dim "
    "lock unlock email message add cancel pause skip find show transfer check read navigate vacuum make "
    "post download water feed drive wake record print pay deliver clean cook fetch bring"
)
_HAPPY = _set(
    "happy glad excited great good awesome proud love loved won passed finished relieved grateful calm"
)
_NEGATION = _set("not no never n't isn't wasn't don't didn't can't")
_HELLO = _set("hello hi hey hiya howdy yo greetings morning afternoon evening")
_BYE = ("have a nice", "have a good", "take care", "good night", "goodnight")


def says_goodbye(user: str) -> bool:
    """ "Bye!", "See you later.", "Later!" — not "I'm going for a walk later." (a lone "later" only ends
    a message of a few words)."""
    ws = [w.lower() for w in words_of(user)]
    return _has_phrase(user, _FAREWELL) or (bool(ws) and ws[-1] == "later" and len(ws) <= 3)


def new_names(text: str, messages: Sequence[Mapping[str, str]]) -> set[str]:
    """Capitalised words inside a sentence of ``text`` ("Hello Will!") that no message holds: a name the
    reply would make up (a stored reply said as written can carry another user's name)."""
    known = {w.lower() for m in messages for w in words_of(m["content"])}
    names = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        for w in words_of(sentence)[1:]:
            if w[:1].isupper() and not w.startswith("I'") and w != "I" and w.lower() not in known:
                names.add(w)
    return names


def request_kind(user: str) -> str:
    """The kind of what the user said, for a fitting honest reply (a keyword rule: cheap, testable)."""
    ws = [w.lower() for w in words_of(user)]
    if not ws:
        return "unclear"
    words = set(ws)
    if says_goodbye(user) or _has_phrase(user, _BYE):
        return "farewell"
    if words & {"thanks", "thank"}:
        return "thanks"
    if _has_phrase(user, ("how are you", "how are things", "how's it going", "how is it going", "what's up",
                          "how are you doing", "how have you been")):  # fmt: skip
        return "how_are_you"
    asks_me = _is_question(user) and bool(words & {"you", "your", "you're"})
    if ws[0] in _REQUEST_VERBS or (
        ws[:2] in (["can", "you"], ["could", "you"]) and bool(words & _REQUEST_VERBS)
    ):
        return "request"
    if not asks_me and (words & _SAD or (words & _HAPPY and words & _NEGATION)):
        return "sad"  # "I'm not doing great" is sad news too
    if _is_question(user):
        return "question"
    if ws[0] in _HELLO or (len(ws) <= 4 and words & _HELLO):
        return "greeting"
    if words & _HAPPY:
        return "happy"
    if len(ws) >= 4:  # something the user told: acknowledge it rather than ask them to repeat it
        return "statement"
    return "unclear"


def honest_reply(user: str) -> str:
    return HONEST_REPLIES[request_kind(user)]


# -- questions about what the user said: repeat it back --------------------------------------------------
_WH = _set("what what's whats which who who's whose when where where's how")
_MEMORY_VERBS = _set("remember remind told know")
_ME = _set("my me i i'm im mine")
_TO_YOU = {"i": "you", "i'm": "you're", "im": "you're", "my": "your", "me": "you", "mine": "yours",
           "myself": "yourself", "i've": "you've", "i'll": "you'll", "i'd": "you'd", "am": "are"}  # fmt: skip


def asks_about_user(user: str) -> bool:
    """A question about the user themselves ("What's my wife called?", "How old did I say I am?", "Do
    you remember my job?"), not one they ask for themselves ("How do I make tea?", "Is my parcel out?")
    or about the agent ("Can you see me?"). Judged on the message's last sentence."""
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", user.strip()) if words_of(x)]
    if not sentences or not _is_question(sentences[-1]) and not sentences[-1].lower().startswith("tell me"):
        return False
    ws = [w.lower() for w in words_of(sentences[-1])]
    words, pairs = set(ws), set(zip(ws, ws[1:]))
    mine = bool(words & {"my", "mine"}) or ws[-1] == "me"  # not "tell me": that "me" asks, it is no topic
    if (words & _MEMORY_VERBS and mine) or pairs & {("did", "i"), ("i", "said"), ("i", "told"),
                                                           ("i", "am"), ("about", "me")}:  # fmt: skip
        return True
    if "you" in words or ws[0] not in _WH:
        return False  # "Can you see me?", "Is my parcel out for delivery yet?"
    return mine or (("do", "i") in pairs and ws[:2] != ["how", "do"])


def second_person(statement: str) -> str:
    """ "I have two kids." → "you have two kids"; "The user lives in Leeds." → "you live in Leeds" (what
    the user said or the memory holds, said back to them). Names keep their capitals."""
    text = statement.strip().rstrip(".!")
    text = re.sub(r"^(?:hi|hello|hey|well|so|oh|okay|ok|yes|yeah)\b[,!]?\s*", "", text, flags=re.I)
    text = re.sub(r",?\s*by the way$", "", text, flags=re.I)
    text = re.sub(r"\bthe user's\b", "your", text, flags=re.I)
    text = re.sub(r"\bthe user (\w+?)s\b", r"you \1", text, flags=re.I)  # "the user lives" → "you live"
    out: list[str] = []
    for token in re.findall(r"[A-Za-z']+|[^A-Za-z']+", text):
        low = token.lower().replace("’", "'")
        if low == "was" and out and out[-1] == "you":
            out.append("were")
        elif low in _TO_YOU:
            out.append(_TO_YOU[low])
        elif not out and low in _STOP:  # a sentence's first word, not a name: "The", "A", "Just"
            out.append(low)
        else:
            out.append(token)
    return "".join(out)


def recall_reply(user: str, told: Sequence[str]) -> str | None:
    """For a question about the user, what they told the agent, said back ("You told me your wife's name
    is Priya."); ``told``: their earlier messages and the context's memory sentences ("The user's ...").
    The one sharing most content words with the question, else the latest that is about them. None when
    the question is not about the user or nothing they said is about themselves."""
    if not asks_about_user(user):
        return None
    asked = {w.removesuffix("'s") for w in _content(words_of(user))}
    best, best_overlap = None, 0
    about_them: list[str] = []
    for sentence in (s.strip() for t in told for s in re.split(r"(?<=[.!?])\s+", t) if s.strip()):
        ws = [w.lower() for w in words_of(sentence)]
        if _is_question(sentence) or ws[0] in _REQUEST_VERBS or not (_ME | {"user", "user's"}) & set(ws):
            continue
        about_them.append(sentence)
        overlap = len(asked & {w.removesuffix("'s") for w in _content(words_of(sentence))})
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    chosen = best or (about_them[-1] if about_them else None)
    if chosen is None:
        return "I don't think you've told me that yet."
    return f"You told me {second_person(chosen)}."
