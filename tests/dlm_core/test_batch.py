"""Batched denoising (dlm_core.batch): every reply in a batch gets exactly the tokens it gets alone.

The shipped embedded model (copy head, user-turn table, drafts) and tiny checkpoints of the imported
families (aligned blocks, shifted logits, an autoregressive block start, full attention) decode the
same prompts alone through ``DiffusionEngine`` and together through ``BatchedEngine``; the scheduler's
decisions (``SlotPool``, ``BatchQueue``, first blocks first) are checked with plain inputs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from dlm_core import Constraints, DecodeOptions, DiffusionEngine, GenerationError, SamplerConfig, load_model
from dlm_core.batch import END, BatchedEngine, BatchQueue, BatchWorker, SlotPool

from .family_fixtures import write_family

SHIPPED = Path(__file__).resolve().parents[2] / "agent" / "embedded" / "model"
OPTIONS = DecodeOptions(
    max_tokens=48,
    steps=8,
    constraints=Constraints(finish_copies=True, whole_word_copies=True),
)
CHATS = [
    [{"role": "user", "content": "Hi."}],
    [
        {"role": "system", "content": "You are a helpful voice assistant. It is 2:05 PM on Tuesday."},
        {"role": "user", "content": "What time is it right now?"},
    ],
    [{"role": "user", "content": "My name is Marigold and I like green apples. Tell me a joke please."}],
    [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "What day is it today, and what is my name?"},
    ],
]


@pytest.fixture(scope="module")
def engine() -> DiffusionEngine:
    return DiffusionEngine.from_pretrained(SHIPPED, max_context=512)


def prompt_ids(engine: DiffusionEngine, chat: list[dict[str, str]]) -> list[int]:
    return engine.tokenizer.encode_chat(chat, add_generation_prompt=True)


def alone(engine: DiffusionEngine, prompt: list[int], options: DecodeOptions, draft=None) -> list[int]:
    engine.reset()
    return engine.generate_ids(prompt, options, draft=draft).token_ids


def run(batched: BatchedEngine) -> list[tuple[object, object]]:
    events = []
    while batched.busy:
        events += batched.step()
    return events


def test_a_batch_decodes_each_reply_as_it_would_alone(engine: DiffusionEngine) -> None:
    prompts = [prompt_ids(engine, c) for c in CHATS]
    assert len({len(p) for p in prompts}) == len(prompts)  # different prompt (context) lengths
    draft = engine.tokenizer.encode(" It is 2:05 PM.") + [engine.cfg.eos_token_ids[0]]
    drafts = [None, draft, None, None]
    expected = [alone(engine, p, OPTIONS, d) for p, d in zip(prompts, drafts)]
    batched = BatchedEngine(engine, max_batch=4, sessions=4)
    requests = [batched.request(i, p, OPTIONS, draft=d) for i, (p, d) in enumerate(zip(prompts, drafts))]
    for req in requests[:3]:
        batched.submit(req)
    events = batched.step() + batched.step()
    batched.submit(requests[3])  # joins mid-block, at the next step
    events += run(batched)
    for req, want, p, d in zip(requests, expected, prompts, drafts):
        assert req.result is not None and req.result.token_ids == want
        engine.reset()  # the reply gate reads these: the same reveal probabilities as decoding alone
        confidences = engine.generate_ids(p, OPTIONS, draft=d).confidences
        assert len(req.result.confidences) == len(want)
        assert req.result.confidences == pytest.approx(confidences, abs=1e-5, nan_ok=True)
        blocks = [e for r, e in events if r is req and e is not END]
        assert [t for b in blocks for t in b.token_ids] == want  # streamed as it went
        assert [e for r, e in events if r is req][-1] is END
    assert batched.forwards < sum(r.result.forwards for r in requests if r.result)  # rows shared forwards


def test_a_stopped_reply_leaves_and_the_others_are_undisturbed(engine: DiffusionEngine) -> None:
    prompts = [prompt_ids(engine, c) for c in CHATS[1:]]
    long = DecodeOptions(max_tokens=48, steps=8, early_exit=False)
    expected = [alone(engine, p, long) for p in prompts]
    batched = BatchedEngine(engine, max_batch=3, sessions=3, first_blocks_first=False)
    stop = threading.Event()
    requests = [batched.request(i, p, long, stop=stop if i == 1 else None) for i, p in enumerate(prompts)]
    for req in requests:
        batched.submit(req)
    events = batched.step() + batched.step()
    stop.set()
    events += run(batched)
    assert requests[1].result is not None and requests[1].result.stopped
    assert [e for r, e in events if r is requests[1]] == [END]  # mid-block: nothing of it was sent
    for i in (0, 2):
        assert requests[i].result is not None and requests[i].result.token_ids == expected[i]


def test_each_session_keeps_its_own_cached_conversation(engine: DiffusionEngine) -> None:
    history = [
        {"role": "user", "content": "Hello, my name is Sam."},
        {"role": "assistant", "content": "Hi Sam!"},
    ]
    chats = [history + [{"role": "user", "content": q}] for q in ("What is my name?", "Tell me a joke.")]
    expected = [alone(engine, prompt_ids(engine, c), OPTIONS) for c in chats]
    batched = BatchedEngine(engine, max_batch=2, sessions=2)
    for session, chat in enumerate(chats):  # as while the user speaks
        assert batched.prefill(session, engine.tokenizer.encode_chat(chat[:-1])) > 0
    requests = [batched.request(s, prompt_ids(engine, c), OPTIONS) for s, c in enumerate(chats)]
    for req in requests:
        batched.submit(req)
    run(batched)
    for req, chat, want in zip(requests, chats, expected):
        assert req.result is not None and req.result.token_ids == want
        history_ids = engine.tokenizer.encode_chat(chat[:-1])
        common = next(i for i, (a, b) in enumerate(zip([*history_ids, -1], req.prompt)) if a != b)
        assert common > 10 and req.result.prefill_tokens == len(req.prompt) - common  # only the new turn
    # a third session takes the least recently used row; the evicted one prefills afresh next time
    batched.submit(extra := batched.request("third", prompt_ids(engine, CHATS[0]), OPTIONS))
    run(batched)
    assert batched.pool.row_of(0) is None and batched.pool.row_of(1) is not None
    assert extra.result is not None and extra.result.token_ids == alone(
        engine, prompt_ids(engine, CHATS[0]), OPTIONS
    )


@pytest.mark.parametrize("family", ["fast_dllm_v2", "sdar", "llada", "dream"])
def test_batches_match_alone_for_every_family(tmp_path: Path, family: str) -> None:
    """Aligned blocks with the prompt's tail heading the first block, shifted logits, the
    autoregressive block start, and full attention's fresh prefill, all through per-row state."""
    block = {"fast_dllm_v2": 8, "sdar": 4}.get(family, 8)
    fx = write_family(tmp_path / family, family, seed=3, block=block)
    engine = DiffusionEngine(load_model(fx.folder), max_context=96)
    gen = torch.Generator().manual_seed(1)
    vocab = min(engine.cfg.vocab_size, 200)
    prompts = [torch.randint(10, vocab, (n,), generator=gen).tolist() for n in (5, 13, 22)]
    options = DecodeOptions(max_tokens=20, steps=4, block_len=block if engine.cfg.aligned_blocks else 8)
    expected = [alone(engine, p, options) for p in prompts]
    batched = BatchedEngine(engine, max_batch=3, sessions=3)
    requests = [batched.request(i, p, options) for i, p in enumerate(prompts)]
    for req in requests:
        batched.submit(req)
    run(batched)
    assert [r.result.token_ids for r in requests if r.result] == expected


def test_sampling_with_temperature_gives_each_reply_its_own_seeded_noise(engine: DiffusionEngine) -> None:
    options = DecodeOptions(max_tokens=32, steps=8, sampler=SamplerConfig(temperature=0.8, seed=7))
    prompts = [prompt_ids(engine, c) for c in CHATS[:3]]
    expected = [alone(engine, p, options) for p in prompts]
    batched = BatchedEngine(engine, max_batch=3, sessions=3)
    requests = [batched.request(i, p, options) for i, p in enumerate(prompts)]
    for req in requests:
        batched.submit(req)
    run(batched)
    assert [r.result.token_ids for r in requests if r.result] == expected


def test_a_request_that_fails_in_its_prefill_ends_alone(engine: DiffusionEngine) -> None:
    good = prompt_ids(engine, CHATS[1])
    expected = alone(engine, good, OPTIONS)
    batched = BatchedEngine(engine, max_batch=2, sessions=2)
    bad = batched.request("bad", [1, engine.cfg.vocab_size + 5, 3], OPTIONS)  # no such token
    ok = batched.request("ok", good, OPTIONS)
    batched.submit(bad)
    batched.submit(ok)
    events = run(batched)
    failed = [e for r, e in events if r is bad]
    assert len(failed) == 1 and isinstance(failed[0], IndexError)
    assert ok.result is not None and ok.result.token_ids == expected
    assert not batched.pool.pinned("bad")
    batched.submit(again := batched.request("bad", good, OPTIONS))  # the session can reply again
    run(batched)
    assert again.result is not None and again.result.token_ids == expected


def test_bad_requests_fail_at_once(engine: DiffusionEngine) -> None:
    batched = BatchedEngine(engine, max_batch=1, sessions=1)
    with pytest.raises(GenerationError, match="context holds"):
        batched.request("s", [7] * 500, OPTIONS)
    with pytest.raises(GenerationError, match="cannot exceed"):
        BatchedEngine(engine, max_batch=4, sessions=2)


def test_the_worker_streams_each_caller_its_blocks_and_a_closed_stream_frees_its_row(
    engine: DiffusionEngine,
) -> None:
    prompts = [prompt_ids(engine, c) for c in CHATS[1:3]]
    long = DecodeOptions(max_tokens=48, steps=8, early_exit=False)
    expected = alone(engine, prompts[0], long)
    worker = BatchWorker(BatchedEngine(engine, max_batch=2, sessions=2))
    try:
        kept = worker.stream("a", prompts[0], long)
        dropped = worker.stream("b", prompts[1], long)
        dropped.close()  # the consumer went away before its first block
        got = [t for block in kept for t in block.token_ids]
        assert got == expected and kept.result.token_ids == expected
        again = worker.stream("b", prompts[1], long)  # the same session replies again afterwards
        assert [t for block in again for t in block.token_ids] == alone(engine, prompts[1], long)
    finally:
        worker.close()
    with pytest.raises(GenerationError, match="closed"):
        worker.stream("a", prompts[0], long)


# -- the scheduler's decisions, with plain inputs -------------------------------------------------------
@dataclass(eq=False)
class Req:
    session: str
    stop: bool = False

    def cancelled(self) -> bool:
        return self.stop


def test_queue_is_first_come_first_served_up_to_the_batch_size() -> None:
    q = BatchQueue(max_batch=3)
    reqs = [Req(s) for s in "abcde"]
    for r in reqs:
        q.push(r)
    start, dropped = q.take(active=1, busy={"z"})
    assert start == reqs[:2] and dropped == [] and len(q) == 3
    start, _ = q.take(active=0, busy=set())
    assert start == reqs[2:5]


def test_queue_skips_a_session_still_replying_and_drops_cancelled_requests() -> None:
    q = BatchQueue(max_batch=4)
    a2, b, gone, c = Req("a"), Req("b"), Req("x", stop=True), Req("c")
    for r in (a2, b, gone, c):
        q.push(r)
    start, dropped = q.take(active=1, busy={"a"})  # a's previous reply is still in the batch
    assert start == [b, c] and dropped == [gone]
    start, _ = q.take(active=0, busy=set())
    assert start == [a2]  # its turn once the session is free, ahead of anything pushed later


def test_queue_takes_one_request_per_session_per_step() -> None:
    q = BatchQueue(max_batch=4)
    first, second = Req("a"), Req("a")
    q.push(first)
    q.push(second)
    assert q.take(active=0, busy=set())[0] == [first]
    assert q.take(active=0, busy=set())[0] == [second]


def test_slot_pool_evicts_the_least_recently_used_session_that_is_not_replying() -> None:
    pool = SlotPool(2)
    assert pool.acquire("a") == (0, None)
    assert pool.acquire("b") == (1, None)
    pool.pin("a")
    assert pool.acquire("c") == (1, "b")  # a is replying: b goes although a is older
    pool.unpin("a")
    assert pool.acquire("c") == (1, None)  # its own row, now most recently used
    assert pool.acquire("d") == (0, "a")
    pool.pin("c")
    pool.pin("d")
    assert pool.acquire("e") is None  # every row is replying


def test_slot_pool_forgets_a_replying_session_when_its_reply_ends() -> None:
    pool = SlotPool(1)
    pool.acquire("a")
    pool.pin("a")
    assert pool.forget("a") is None and pool.row_of("a") == 0
    assert pool.unpin("a") == 0 and pool.row_of("a") is None
    assert pool.acquire("b") == (0, None)


@dataclass(eq=False)
class Row:
    index: int
    seq: int


def test_first_blocks_step_first_oldest_first_up_to_the_batch_size(engine: DiffusionEngine) -> None:
    batched = BatchedEngine(engine, max_batch=2, sessions=4)
    second, first, later_first, last_first = Row(1, 0), Row(0, 2), Row(0, 1), Row(0, 3)
    rows = [second, first, later_first, last_first]
    assert batched.rows_to_step(rows) == [later_first, first]  # type: ignore[arg-type]
    assert batched.rows_to_step([second, Row(2, 5), Row(1, 4)])[0] is second  # type: ignore[arg-type]
    batched.first_blocks_first = False
    assert batched.rows_to_step(rows) == [second, later_first]  # type: ignore[arg-type]


def test_a_capped_batch_still_decodes_every_waiting_reply_as_alone(engine: DiffusionEngine) -> None:
    prompts = [prompt_ids(engine, c) for c in CHATS]
    expected = [alone(engine, p, OPTIONS) for p in prompts]
    batched = BatchedEngine(engine, max_batch=2, sessions=4)
    requests = [batched.request(i, p, OPTIONS) for i, p in enumerate(prompts)]
    for req in requests:
        batched.submit(req)
    events = run(batched)
    assert [r.result.token_ids for r in requests if r.result] == expected
    assert batched.rows_forwarded <= 2 * batched.forwards
    first_blocks = [r for r, e in events if e is not END and e.index == 0]
    assert first_blocks[:2] == requests[:2]  # the oldest two got their first blocks first


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_batch_on_cuda_matches_alone_on_cuda() -> None:
    engine = DiffusionEngine.from_pretrained(
        SHIPPED, device="cuda", dtype=torch.float32, use_cuda_graphs=False
    )
    prompts = [prompt_ids(engine, c) for c in CHATS]
    expected = [alone(engine, p, OPTIONS) for p in prompts]
    batched = BatchedEngine(engine, max_batch=4, sessions=4)
    requests = [batched.request(i, p, OPTIONS) for i, p in enumerate(prompts)]
    for req in requests:
        batched.submit(req)
    run(batched)
    assert [r.result.token_ids for r in requests if r.result] == expected
