"""The turn tracker: when the user's turn starts, pauses, ends, continues, or interrupts the agent.

Sans-I/O: plain inputs in — a frame's capture time and VAD verdict, the speculative transcript, the
first reply sample, the end of playback, what an interruption said — and actions out. ``VoicePipeline``
drives it and does the I/O (ASR, LM, TTS, the sink); the tracker itself never waits, sleeps or
touches a model, so every rule is tested with plain sequences of inputs (tests/agent/test_turns.py)::

    LISTENING ──speech──▶ USER_SPEAKING ──silence──▶ ENDPOINTING ──enough silence──▶ REPLYING ──1st sample──▶ SPEAKING
        ▲                      ▲   (speculate)          │ speech resumes               │ speech: merge       │
        │                      ├─────────────────────────┘ (discard)                    │                     │
        │                      └──────────── merge: the same turn goes on ◀─────────────┴── within the merge ─┤
        │                                                                                     window          │
        └───────────────────────────── reply played / barge-in (a new turn) ◀────────────────────────────────┘

Continuation merge: people pause mid-sentence ("Set a timer … for five minutes"). Speech that resumes
after the turn was committed — while the reply is being prepared, or within ``merge_window_ms`` of its
first sample — continues the same turn: the half-reply is dropped and the whole utterance is answered
once. Later speech is a barge-in: the reply stops and the speech is a new turn. Backchannels ("mm-hm")
do neither.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .end_of_turn import required_silence_for
from .endpointing import is_backchannel, required_silence_ms, sounds_like_echo, starts_with_phrase


class TurnState(enum.Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    ENDPOINTING = "endpointing"
    REPLYING = "replying"
    SPEAKING = "speaking"


@dataclass(frozen=True)
class TurnPolicy:
    """The tracker's settings (from ``[endpoint]``, ``[vad]``, ``[audio]`` and ``[barge_in]``)."""

    frame_ms: float = 32.0
    preroll_ms: float = 256.0
    hangover_ms: float = 300.0
    incomplete_hangover_ms: float = 1100.0
    speculative: bool = True
    semantic: bool = False  # required silence from P(finished) when given one, else the word rule
    confident_ms: float = 300.0  # silence needed when surely finished
    speculate_below: float = 0.7
    max_utterance_s: float = 30.0
    merge_window_ms: float = 1000.0  # 0 = never merge: speech after a commit is always a new turn
    barge_in: bool = True
    barge_in_min_speech_ms: float = 300.0
    barge_in_max_gap_ms: float = 400.0
    min_speech_frames: int = 3  # frames the VAD needs to confirm speech (its "start" looks back this far)
    backchannels: tuple[str, ...] = ()
    interrupt_phrases: tuple[str, ...] = ()  # speech opening like this never merges ("wait, ...")
    min_words: int = 1

    @classmethod
    def from_config(cls, cfg, min_speech_frames: int) -> TurnPolicy:
        ep, bi = cfg.endpoint, cfg.barge_in
        return cls(
            frame_ms=cfg.audio.frame_ms,
            preroll_ms=cfg.vad.preroll_ms,
            hangover_ms=ep.hangover_ms,
            incomplete_hangover_ms=ep.incomplete_hangover_ms,
            speculative=ep.speculative,
            semantic=ep.semantic,
            confident_ms=ep.confident_ms,
            speculate_below=ep.speculate_below,
            max_utterance_s=ep.max_utterance_s,
            merge_window_ms=ep.merge_window_ms,
            barge_in=bi.enabled,
            barge_in_min_speech_ms=bi.min_speech_ms,
            barge_in_max_gap_ms=bi.max_gap_ms,
            min_speech_frames=min_speech_frames,
            backchannels=tuple(bi.backchannels),
            interrupt_phrases=tuple(bi.interrupt_phrases),
            min_words=bi.min_words,
        )

    @property
    def preroll_frames(self) -> int:
        return max(1, round(self.preroll_ms / self.frame_ms))


# -- actions: what the pipeline must do -------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    turn: int


@dataclass(frozen=True)
class StartUtterance(Action):
    """A user turn starts at ``start_t``: its audio is the last ``preroll_frames`` frames (this one
    included), or, when None, the speech over the reply that became this turn."""

    start_t: float
    preroll_frames: int | None = None


@dataclass(frozen=True)
class Speculate(Action):
    """Start ASR → LM → TTS on the audio so far; nothing plays until a ``Commit``."""

    attempt: int


@dataclass(frozen=True)
class Discard(Action):
    """Throw the speculative attempt away (the user is still talking)."""

    reason: str


@dataclass(frozen=True)
class Paused(Action):
    last_voiced_t: float


@dataclass(frozen=True)
class Resumed(Action):
    pause_ms: float


@dataclass(frozen=True)
class Commit(Action):
    """The turn ended: play the reply (start one first when ``start_reply``)."""

    last_voiced_t: float
    silence_ms: float
    required_ms: float
    start_reply: bool


@dataclass(frozen=True)
class CheckInterruption(Action):
    """Transcribe the speech over the reply since ``start_t``, then call ``interruption_heard``."""

    start_t: float
    check: int


@dataclass(frozen=True)
class IgnoreInterruption(Action):
    reason: str
    text: str


@dataclass(frozen=True)
class BargeIn(Action):
    """Stop the reply now; the turn ends interrupted. A ``StartUtterance`` for the speech follows."""

    speech_t: float


@dataclass(frozen=True)
class Merge(Action):
    """Stop and drop the reply: the user went on, so the same turn continues from ``start_t``."""

    start_t: float
    gap_ms: float  # silence between the committed end of the turn and the resumed speech
    playing: bool  # the reply had started playing (else it was still being prepared)


@dataclass(frozen=True)
class Listen(Action):
    """The turn is over: reset the VAD and wait for the next one."""


# -- the tracker ------------------------------------------------------------------------------------
@dataclass
class _Utterance:
    start_t: float
    last_voiced_t: float
    commit_voiced_t: float | None = None  # last voiced frame when the turn was committed


@dataclass
class _Interruption:
    start_t: float  # where its audio starts (the pre-roll reaches back before the onset)
    onset_t: float  # where the VAD heard the speech begin
    last_voiced_t: float
    voiced_frames: int
    preroll_frames: int = 1
    check: int = 0  # > 0 once a transcript was asked for


class TurnTracker:
    """Turn-taking decisions for one conversation. Every input returns the actions to carry out."""

    def __init__(self, policy: TurnPolicy) -> None:
        self.policy = policy
        self.state = TurnState.LISTENING
        self.turn = 0
        self._quiet_frames = 0  # frames heard since the last utterance, up to the pre-roll
        self._utt: _Utterance | None = None
        self._attempt = 0  # id of the newest speculative attempt (0 = none in flight)
        self._transcript: str | None = None  # of the attempt in flight, once known
        self._finished_p: float | None = None  # P(the user has finished | that transcript)
        self._first_sample_t: float | None = None
        self._itr: _Interruption | None = None
        self._checks = 0

    # -- queries -------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state is not TurnState.LISTENING

    @property
    def collecting(self) -> bool:
        """Frames belong to the user's utterance (still talking, or a reply that may yet be merged)."""
        return self._utt is not None

    @property
    def interrupting(self) -> bool:
        """Frames belong to speech over the reply, being confirmed as an interruption."""
        return self._itr is not None

    @property
    def interruption_start_t(self) -> float | None:
        return self._itr.start_t if self._itr is not None else None

    @property
    def interruption_preroll(self) -> int:
        """Frames (this one included) the speech over the reply reaches back to."""
        return self._itr.preroll_frames if self._itr is not None else 0

    # -- inputs --------------------------------------------------------------------------------------
    def frame(self, t: float, voiced: bool, prob: float, started: bool) -> list[Action]:
        """One VAD frame ending at capture time ``t``; ``started``: the VAD just confirmed speech."""
        state = self.state
        if state is TurnState.LISTENING:
            return self._listening(t, started)
        if state is TurnState.USER_SPEAKING:
            return self._speaking(t, voiced, prob)
        if state is TurnState.ENDPOINTING:
            return self._endpointing(t, voiced, started)
        return self._agent_turn(t, voiced, started)

    def transcript(self, attempt: int, text: str, finished_p: float | None = None) -> float | None:
        """The speculative attempt's transcript is ready, with P(finished) if a model gave one.

        Returns the silence the turn now needs (ms), or None when the attempt is stale.
        """
        if attempt != self._attempt or self.state not in (TurnState.USER_SPEAKING, TurnState.ENDPOINTING):
            return None
        self._transcript = text
        self._finished_p = finished_p
        return self.required_silence_ms()

    def required_silence_ms(self) -> float:
        """Silence that ends the turn now: from P(finished), the trailing-word rule, or the hangover."""
        p = self.policy
        if not p.speculative:
            return p.hangover_ms
        if p.semantic and self._finished_p is not None and self._transcript:
            return required_silence_for(self._finished_p, p.confident_ms, p.incomplete_hangover_ms)
        return float(required_silence_ms(self._transcript, p.hangover_ms, p.incomplete_hangover_ms))

    def playback_started(self, t: float) -> bool:
        """The reply's first sample reached the output; False when no committed reply is waiting."""
        if self.state is not TurnState.REPLYING or self._first_sample_t is not None:
            return False
        self._first_sample_t = t
        self.state = TurnState.SPEAKING
        return True

    def reply_finished(self) -> list[Action]:
        """The reply played to its end (or there was nothing to say): the turn is over."""
        if self.state not in (TurnState.REPLYING, TurnState.SPEAKING):
            return []
        itr = self._itr
        if itr is not None:
            # Speech started over the end of the reply before it was confirmed: it is the next turn,
            # from its first frame (the VAD is mid-speech; resetting it would drop the first words).
            return self._new_utterance(itr.start_t, itr.last_voiced_t)
        return self._listen()

    def interruption_heard(self, check: int, text: str, reply_text: str = "") -> list[Action]:
        """What the speech over the reply said: the reply's own echo, a backchannel, a continuation,
        or a barge-in. ``reply_text``: what the agent is saying (its clauses so far)."""
        itr = self._itr
        if itr is None or itr.check != check or self.state not in (TurnState.REPLYING, TurnState.SPEAKING):
            return []
        self._itr = None
        p = self.policy
        if sounds_like_echo(text, reply_text):
            return [IgnoreInterruption(self.turn, "echo", text)]
        if is_backchannel(text, p.backchannels, p.min_words):
            return [IgnoreInterruption(self.turn, "backchannel", text)]
        if self._may_merge(itr.onset_t) and not starts_with_phrase(text, p.interrupt_phrases):
            return self._merge(itr.onset_t, itr.last_voiced_t)
        turn = self.turn
        return [BargeIn(turn, itr.start_t), *self._new_utterance(itr.start_t, itr.last_voiced_t)]

    def interruption_failed(self, check: int) -> None:
        if self._itr is not None and self._itr.check == check:
            self._itr = None

    def cancel(self) -> bool:
        """Stop the agent's turn (a client's ``response.cancel``) and listen again."""
        if self.state not in (TurnState.REPLYING, TurnState.SPEAKING):
            return False
        self._listen()
        return True

    def text_turn(self) -> int:
        """A typed turn: committed at once, nothing to endpoint or merge. Returns its number."""
        if self.busy:
            raise RuntimeError("a turn is already in progress")
        self.turn += 1
        self.state = TurnState.REPLYING
        self._first_sample_t = None
        return self.turn

    # -- states --------------------------------------------------------------------------------------
    def _listening(self, t: float, started: bool) -> list[Action]:
        self._quiet_frames = min(self._quiet_frames + 1, self.policy.preroll_frames)
        if not started:
            return []
        preroll = self._quiet_frames
        return self._new_utterance(t - preroll * self.policy.frame_ms / 1e3, t, preroll)

    def _new_utterance(
        self, start_t: float, last_voiced_t: float, preroll: int | None = None
    ) -> list[Action]:
        self.turn += 1
        self._utt = _Utterance(start_t, last_voiced_t)
        self._attempt = 0
        self._transcript = None
        self._finished_p = None
        self._first_sample_t = None
        self._itr = None
        self._quiet_frames = 0
        self.state = TurnState.USER_SPEAKING
        return [StartUtterance(self.turn, start_t, preroll)]

    def _speaking(self, t: float, voiced: bool, prob: float) -> list[Action]:
        utt = self._utt
        assert utt is not None
        if not voiced:
            return self._pause(utt)
        utt.last_voiced_t = t
        actions: list[Action] = []
        p = self.policy
        if p.speculative and p.speculate_below > 0:
            # Speculate on a voiced frame whose probability is already falling: the VAD calls silence
            # one frame later, and that frame is won whenever it does. Any further voiced frame makes
            # the attempt stale (its audio misses that frame).
            if self._attempt:
                actions.append(self._discard("speech went on"))
            if prob < p.speculate_below:
                actions.append(self._speculate())
        if t - utt.start_t > p.max_utterance_s:  # a runaway utterance: end it here
            actions += self._pause(utt)
            actions += self._commit(utt, t)
        return actions

    def _pause(self, utt: _Utterance) -> list[Action]:
        self.state = TurnState.ENDPOINTING
        actions: list[Action] = [Paused(self.turn, utt.last_voiced_t)]
        if not self._attempt and self.policy.speculative:
            actions.append(self._speculate())
        return actions

    def _endpointing(self, t: float, voiced: bool, started: bool) -> list[Action]:
        utt = self._utt
        assert utt is not None
        if voiced and started:
            pause_ms = (t - utt.last_voiced_t) * 1e3
            utt.last_voiced_t = t
            self.state = TurnState.USER_SPEAKING
            actions: list[Action] = [self._discard("speech resumed")] if self._attempt else []
            return [*actions, Resumed(self.turn, pause_ms)]
        silence_ms = (t - utt.last_voiced_t) * 1e3
        needed = self.required_silence_ms()
        if silence_ms >= needed:
            return self._commit(utt, t, needed)
        return []

    def _commit(self, utt: _Utterance, t: float, required_ms: float = 0.0) -> list[Action]:
        start_reply = not self._attempt
        self._attempt = 0
        self._transcript = None
        self._finished_p = None
        self.state = TurnState.REPLYING
        utt.commit_voiced_t = utt.last_voiced_t
        silence_ms = (t - utt.last_voiced_t) * 1e3
        return [Commit(self.turn, utt.last_voiced_t, silence_ms, required_ms, start_reply)]

    def _agent_turn(self, t: float, voiced: bool, started: bool) -> list[Action]:
        p = self.policy
        self._quiet_frames = min(self._quiet_frames + 1, p.preroll_frames)
        itr = self._itr
        if itr is None:
            if not started:
                return []
            if self.state is TurnState.REPLYING and self._may_merge(t):
                # Nothing has played yet: the user simply went on (the reply was premature).
                return self._merge(t - p.min_speech_frames * p.frame_ms / 1e3, t)
            start_t = t - self._quiet_frames * p.frame_ms / 1e3
            if not p.barge_in:
                return []
            onset_t = t - p.min_speech_frames * p.frame_ms / 1e3
            self._itr = _Interruption(
                start_t, onset_t, t, p.min_speech_frames, preroll_frames=self._quiet_frames
            )
            return []
        if voiced:
            itr.voiced_frames += 1
            itr.last_voiced_t = t
        elif not itr.check and (t - itr.last_voiced_t) * 1e3 > p.barge_in_max_gap_ms:
            self._itr = None  # too short: a click, a cough, a short "mm"
            return []
        if itr.check or itr.voiced_frames * p.frame_ms < p.barge_in_min_speech_ms:
            return []
        self._checks += 1
        itr.check = self._checks
        return [CheckInterruption(self.turn, itr.start_t, itr.check)]

    def _may_merge(self, speech_t: float) -> bool:
        window = self.policy.merge_window_ms
        if window <= 0 or self._utt is None or self._utt.commit_voiced_t is None:
            return False  # a typed turn, or merging is off
        if self._first_sample_t is None:
            return True  # the reply has not started playing
        return (speech_t - self._first_sample_t) * 1e3 <= window

    def _merge(self, onset_t: float, last_voiced_t: float) -> list[Action]:
        utt = self._utt
        assert utt is not None and utt.commit_voiced_t is not None
        playing = self._first_sample_t is not None
        gap_ms = max(0.0, (onset_t - utt.commit_voiced_t) * 1e3)
        utt.last_voiced_t = last_voiced_t
        utt.commit_voiced_t = None
        self._first_sample_t = None
        self._itr = None
        self.state = TurnState.USER_SPEAKING
        return [Merge(self.turn, utt.start_t, gap_ms, playing)]

    def _speculate(self) -> Speculate:
        self._checks += 1  # one counter for every id the tracker hands out
        self._attempt = self._checks
        self._transcript = None
        self._finished_p = None
        return Speculate(self.turn, self._attempt)

    def _discard(self, reason: str) -> Discard:
        self._attempt = 0
        self._transcript = None
        self._finished_p = None
        return Discard(self.turn, reason)

    def _listen(self) -> list[Action]:
        self.state = TurnState.LISTENING
        self._utt = None
        self._itr = None
        self._attempt = 0
        self._transcript = None
        self._finished_p = None
        self._first_sample_t = None
        return [Listen(self.turn)]
