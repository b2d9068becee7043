"""The turn tracker on plain input sequences: no models, no threads, no sleeps."""

from __future__ import annotations

import pytest

from agent.turns import (
    BargeIn,
    CheckInterruption,
    Commit,
    Discard,
    IgnoreInterruption,
    Listen,
    Merge,
    Paused,
    Resumed,
    Speculate,
    StartUtterance,
    TurnPolicy,
    TurnState,
    TurnTracker,
)

FRAME = 0.032
POLICY = TurnPolicy(
    frame_ms=32,
    preroll_ms=96,
    hangover_ms=300,
    confident_ms=120,
    semantic=True,
    incomplete_hangover_ms=1100,
    speculate_below=0.7,
    merge_window_ms=1000,
    barge_in_min_speech_ms=300,
    barge_in_max_gap_ms=400,
    min_speech_frames=3,
    backchannels=("mm-hm", "yeah", "uh-huh"),
    interrupt_phrases=("wait", "stop", "hold on"),
)


class Clock:
    """Feeds frames to a tracker at 32 ms steps and keeps every action it returned."""

    def __init__(self, policy: TurnPolicy = POLICY) -> None:
        self.tracker = TurnTracker(policy)
        self.t = 0.0
        self.actions: list = []

    def frames(self, n: int, *, voiced: bool, prob: float | None = None, start_on: int | None = None) -> list:
        """``n`` frames; the VAD confirms speech on frame ``start_on`` (0-based) if given."""
        out = []
        for i in range(n):
            self.t += FRAME
            p = prob if prob is not None else (1.0 if voiced else 0.0)
            out += self.tracker.frame(self.t, voiced, p, started=(i == start_on))
        self.actions += out
        return out

    def speak(self, n: int) -> list:
        """Speech from silence: the VAD confirms it on the third frame (min_speech_frames)."""
        quiet = self.frames(2, voiced=False)
        return quiet + self.frames(n, voiced=True, start_on=0)

    def silence_until_commit(self, transcript: str | None = "Set a timer for five minutes.") -> Commit:
        first = self.frames(1, voiced=False)
        spec = next(a for a in first if isinstance(a, Speculate))
        self.tracker.transcript(spec.attempt, transcript) if transcript is not None else None
        for _ in range(200):
            for a in self.frames(1, voiced=False):
                if isinstance(a, Commit):
                    return a
        raise AssertionError("never committed")


def kinds(actions) -> list[type]:
    return [type(a) for a in actions]


def test_a_turn_starts_pauses_speculates_and_commits_after_the_hangover():
    c = Clock()
    start = c.speak(10)
    assert kinds(start) == [StartUtterance]
    # The pre-roll reaches back to the two quiet frames before the confirming frame (96 ms cap).
    assert start[0].start_t == pytest.approx(3 * FRAME - 3 * FRAME)
    assert c.tracker.state is TurnState.USER_SPEAKING
    paused = c.frames(1, voiced=False)
    assert kinds(paused) == [Paused, Speculate]
    c.tracker.transcript(paused[1].attempt, "What is the weather like tomorrow?")
    last_voiced = paused[0].last_voiced_t
    commit = None
    n = 1
    while commit is None:
        n += 1
        commit = next((a for a in c.frames(1, voiced=False) if isinstance(a, Commit)), None)
    assert commit.required_ms == 300 and commit.silence_ms >= 300
    assert not commit.start_reply  # the speculative attempt is the reply
    assert commit.last_voiced_t == last_voiced
    assert n == 10  # 10 silent frames of 32 ms are the first >= 300 ms
    assert c.tracker.state is TurnState.REPLYING


def test_an_unfinished_transcript_needs_the_longer_silence():
    c = Clock()
    c.speak(10)
    commit = c.silence_until_commit("I was thinking about")
    assert commit.required_ms == 1100 and commit.silence_ms >= 1100


def test_speech_resuming_during_the_hangover_discards_the_attempt():
    c = Clock()
    c.speak(10)
    assert kinds(c.frames(3, voiced=False)) == [Paused, Speculate]
    resumed = c.frames(3, voiced=True, start_on=2)
    assert kinds(resumed) == [Discard, Resumed]
    assert resumed[0].reason == "speech resumed"
    assert resumed[1].pause_ms == pytest.approx(6 * FRAME * 1e3)  # last voiced frame -> the one confirming
    assert c.tracker.state is TurnState.USER_SPEAKING
    assert c.tracker.turn == 1


def test_a_falling_voiced_frame_speculates_one_frame_early_and_more_speech_discards_it():
    c = Clock()
    c.speak(5)
    early = c.frames(1, voiced=True, prob=0.5)
    assert kinds(early) == [Speculate]
    went_on = c.frames(1, voiced=True, prob=0.95)
    assert kinds(went_on) == [Discard] and went_on[0].reason == "speech went on"
    again = c.frames(1, voiced=True, prob=0.4)
    assert kinds(again) == [Speculate] and again[0].attempt != early[0].attempt
    # The pause keeps the attempt that already has every voiced frame.
    assert kinds(c.frames(1, voiced=False)) == [Paused]


def test_a_stale_attempts_transcript_is_ignored():
    c = Clock()
    c.speak(5)
    old = c.frames(1, voiced=True, prob=0.5)[0]
    c.frames(1, voiced=True, prob=0.95)
    new = c.frames(1, voiced=False)
    spec = next(a for a in new if isinstance(a, Speculate))
    c.tracker.transcript(old.attempt, "What time is it?")  # complete-looking, but from the old attempt
    commit = None
    while commit is None:
        commit = next((a for a in c.frames(1, voiced=False) if isinstance(a, Commit)), None)
    assert commit.required_ms == 1100  # the new attempt's transcript was never known
    assert spec.attempt != old.attempt


def test_a_runaway_utterance_is_ended():
    policy = TurnPolicy(**{**POLICY.__dict__, "max_utterance_s": 1.0})
    c = Clock(policy)
    actions = c.speak(40)
    assert Commit in kinds(actions)
    commit = next(a for a in actions if isinstance(a, Commit))
    assert commit.required_ms == 0  # forced, not a silence decision


def test_speech_before_the_reply_plays_merges_into_the_same_turn():
    c = Clock()
    c.speak(10)
    c.silence_until_commit("Set a timer.")
    resumed = c.frames(3, voiced=True, start_on=2)
    assert kinds(resumed) == [Merge]
    merge = resumed[0]
    assert merge.turn == 1 and not merge.playing
    assert merge.start_t == c.actions[0].start_t  # the turn keeps its start: one utterance
    assert c.tracker.state is TurnState.USER_SPEAKING
    commit = c.silence_until_commit("Set a timer for five minutes.")
    assert commit.turn == 1 and commit.start_reply is False


def test_speech_in_the_reply_s_first_second_merges_after_the_check():
    c = Clock()
    c.speak(10)
    c.silence_until_commit("Set a timer.")
    assert c.tracker.playback_started(c.t)
    assert c.tracker.state is TurnState.SPEAKING
    c.frames(5, voiced=False)
    # 10 voiced frames confirm an interruption (3 to start + 7 more >= 300 ms).
    over = c.frames(10, voiced=True, start_on=2)
    checks = [a for a in over if isinstance(a, CheckInterruption)]
    assert len(checks) == 1
    actions = c.tracker.interruption_heard(checks[0].check, "for five minutes")
    assert kinds(actions) == [Merge]
    assert actions[0].playing and actions[0].turn == 1
    assert c.tracker.state is TurnState.USER_SPEAKING


def test_an_interrupt_phrase_or_late_speech_is_a_barge_in_and_a_new_turn():
    for text, quiet_frames in (("wait, stop. tell me a joke instead", 5), ("for five minutes", 40)):
        c = Clock()
        c.speak(10)
        c.silence_until_commit()
        c.tracker.playback_started(c.t)
        c.frames(quiet_frames, voiced=False)
        over = c.frames(10, voiced=True, start_on=2)
        check = next(a for a in over if isinstance(a, CheckInterruption))
        actions = c.tracker.interruption_heard(check.check, text)
        assert kinds(actions) == [BargeIn, StartUtterance], text
        assert actions[0].turn == 1 and actions[1].turn == 2
        assert actions[1].start_t == check.start_t
        assert c.tracker.state is TurnState.USER_SPEAKING


def test_backchannels_and_short_noises_do_not_interrupt():
    c = Clock()
    c.speak(10)
    c.silence_until_commit()
    c.tracker.playback_started(c.t)
    c.frames(40, voiced=False)
    over = c.frames(10, voiced=True, start_on=2)
    check = next(a for a in over if isinstance(a, CheckInterruption))
    assert kinds(c.tracker.interruption_heard(check.check, "Uh-huh.")) == [IgnoreInterruption]
    # The reply's own words, heard back through what echo cancellation left: not the user.
    over = c.frames(10, voiced=True, start_on=2)
    check = next(a for a in over if isinstance(a, CheckInterruption))
    reply = "Why did the scarecrow win an award? Because he was outstanding in his field."
    (echo,) = c.tracker.interruption_heard(check.check, "Why did the state?", reply)
    assert isinstance(echo, IgnoreInterruption) and echo.reason == "echo"
    assert c.tracker.state is TurnState.SPEAKING
    # A cough: confirmed by the VAD, but the gap after it comes before the minimum speech.
    c.frames(4, voiced=True, start_on=2)
    assert not [a for a in c.frames(20, voiced=False) if isinstance(a, CheckInterruption)]
    assert not c.tracker.interrupting
    assert kinds(c.tracker.reply_finished()) == [Listen]
    assert c.tracker.state is TurnState.LISTENING


def test_speech_over_the_end_of_a_reply_becomes_the_next_turn_from_its_onset():
    c = Clock()
    c.speak(10)
    c.silence_until_commit()
    c.tracker.playback_started(c.t)
    c.frames(40, voiced=False)
    c.frames(4, voiced=True, start_on=2)  # confirmed by the VAD, not yet as an interruption
    onset = c.tracker.interruption_start_t
    actions = c.tracker.reply_finished()
    assert kinds(actions) == [StartUtterance]
    assert actions[0].start_t == onset and actions[0].turn == 2


def test_merging_off_makes_every_continuation_a_new_turn():
    policy = TurnPolicy(**{**POLICY.__dict__, "merge_window_ms": 0})
    c = Clock(policy)
    c.speak(10)
    c.silence_until_commit()
    assert not c.frames(3, voiced=True, start_on=2)  # before playback: an interruption to confirm
    over = c.frames(10, voiced=True)
    check = next(a for a in over if isinstance(a, CheckInterruption))
    assert kinds(c.tracker.interruption_heard(check.check, "for five minutes")) == [BargeIn, StartUtterance]


def test_typed_turns_and_cancel():
    c = Clock()
    turn = c.tracker.text_turn()
    assert turn == 1 and c.tracker.state is TurnState.REPLYING
    with pytest.raises(RuntimeError, match="in progress"):
        c.tracker.text_turn()
    # Speech before a typed reply plays cannot merge (there is no utterance): it is an interruption.
    assert not [a for a in c.frames(3, voiced=True, start_on=2) if isinstance(a, Merge)]
    assert c.tracker.cancel()
    assert c.tracker.state is TurnState.LISTENING and not c.tracker.cancel()
    assert not c.tracker.playback_started(c.t)


def test_the_required_silence_follows_the_probability_of_having_finished():
    def commit_after(p_finished: float | None, text: str = "Set a timer for five minutes") -> Commit:
        c = Clock()
        c.speak(10)
        spec = next(a for a in c.frames(1, voiced=False) if isinstance(a, Speculate))
        needed = c.tracker.transcript(spec.attempt, text, p_finished)
        commit = None
        while commit is None:
            commit = next((a for a in c.frames(1, voiced=False) if isinstance(a, Commit)), None)
        assert commit.required_ms == needed
        return commit

    sure, unsure, doubtful = commit_after(0.98), commit_after(0.3), commit_after(0.05)
    assert commit_after(0.6).required_ms == sure.required_ms == POLICY.confident_ms  # likely finished
    assert sure.required_ms < POLICY.hangover_ms < unsure.required_ms < doubtful.required_ms
    assert sure.silence_ms < unsure.silence_ms < doubtful.silence_ms
    assert doubtful.required_ms <= POLICY.incomplete_hangover_ms
    # Without a probability the trailing-word rule decides, as before.
    assert commit_after(None, "I was thinking about").required_ms == POLICY.incomplete_hangover_ms
    assert commit_after(None).required_ms == POLICY.hangover_ms


def test_the_shipped_end_of_turn_model_tells_cut_off_requests_from_whole_ones():
    from agent.end_of_turn import EndOfTurnModel

    model = EndOfTurnModel.load()
    cut = ["Tell me", "I was thinking about", "Can you tell me", "Remind me to", "What is the"]
    whole = ["Tell me a joke.", "What's your name?", "Hi there, how are you today?", "My name is Sam."]
    for a in cut:
        for b in whole:
            assert model.probability(a) < model.probability(b), (a, b)
