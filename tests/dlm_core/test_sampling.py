"""Reveal rules on hand-made logits, constraints, and the engine's behaviour on a tiny random model."""

from __future__ import annotations

import ast
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import dlm_core.sampling as sampling_module
from dlm_core import (
    Constraints,
    DecodeOptions,
    DiffusionEngine,
    SamplerConfig,
    banned_token_ids,
    infill,
    load_model,
    prefix,
)
from dlm_core.families import QUICKTURN
from dlm_core.sampling import build_plan, denoise_step, reveal_first, reveal_schedule
from dlm_core.tokenizer import ChatTokenizer
from tests.common import SetAfterChecks

from .helpers import tiny_quickturn

V, MASK, PAD, EOS = 16, 0, 1, 2
WORDS = list(range(3, V))  # ordinary tokens


def plan_for(cfg: SamplerConfig, length: int, steps: int, *, banned=None, min_len: int = 0):
    banned_t = torch.tensor(banned, dtype=torch.long) if banned else None
    return build_plan(
        cfg,
        block_len=length,
        steps=steps,
        vocab_size=V,
        mask_id=MASK,
        pad_id=PAD,
        eos_ids=(EOS,),
        banned_ids=banned_t,
        min_len_in_block=min_len,
        device="cpu",
    )


def logits_from(rows: list[dict[int, float]]) -> torch.Tensor:
    """One row per position: {token: probability}; the rest is spread evenly over the other words."""
    out = torch.full((1, len(rows), V), float("-inf"))
    for i, row in enumerate(rows):
        others = [t for t in WORDS if t not in row]
        rest = (1.0 - sum(row.values())) / len(others)
        probs = torch.zeros(V)
        for t in others:
            probs[t] = rest
        for t, p in row.items():
            probs[t] = p
        out[0, i] = probs.log()
    return out


def masked_block(length: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((1, length), MASK), torch.zeros((1, length), dtype=torch.bool)


# -- schedules and rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "steps"), [(8, 4), (32, 8), (16, 5), (7, 7), (32, 1)])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_sums_to_length(length: int, steps: int, kind: str) -> None:
    counts = reveal_schedule(length, steps, kind)
    assert len(counts) == steps and sum(counts) == length and min(counts) >= 1


def test_low_confidence_follows_the_schedule_exactly() -> None:
    length, steps = 8, 3
    confidence = [0.50, 0.90, 0.30, 0.80, 0.60, 0.95, 0.40, 0.70]
    logits = logits_from([{3 + i: c} for i, c in enumerate(confidence)])
    cfg = SamplerConfig(rule="low_confidence")
    plan = plan_for(cfg, length, steps)
    x, fixed = masked_block(length)
    by_confidence = sorted(range(length), key=lambda i: -confidence[i])
    revealed: list[int] = []
    for s, k in enumerate(reveal_schedule(length, steps)):
        before = x.clone()
        x = denoise_step(logits, x, fixed, s, cfg, plan)
        new = [i for i in range(length) if before[0, i] == MASK and x[0, i] != MASK]
        assert len(new) == k  # exactly the scheduled count, the most confident first
        assert sorted(new) == sorted(by_confidence[len(revealed) : len(revealed) + k])
        revealed += new
    assert x.tolist() == [[3 + i for i in range(length)]]


def test_threshold_reveals_all_confident_positions() -> None:
    length, steps = 8, 4  # floor = ceil(8 / 4) = 2
    conf = [0.95, 0.2, 0.97, 0.3, 0.91, 0.25, 0.4, 0.35]
    cfg = SamplerConfig(rule="threshold", threshold=0.9)
    x, fixed = masked_block(length)
    x = denoise_step(
        logits_from([{3 + i: c} for i, c in enumerate(conf)]), x, fixed, 0, cfg, plan_for(cfg, length, steps)
    )
    assert [i for i in range(length) if x[0, i] != MASK] == [0, 2, 4]


def test_threshold_meets_the_floor() -> None:
    length, steps = 8, 4
    conf = [0.2, 0.3, 0.95, 0.25, 0.6, 0.25, 0.4, 0.35]  # one above τ; floor 2 adds the next best (0.6)
    cfg = SamplerConfig(rule="threshold", threshold=0.9)
    x, fixed = masked_block(length)
    x = denoise_step(
        logits_from([{3 + i: c} for i, c in enumerate(conf)]), x, fixed, 0, cfg, plan_for(cfg, length, steps)
    )
    assert [i for i in range(length) if x[0, i] != MASK] == [2, 4]


def _entropy(p_top: float) -> float:
    rest = (1 - p_top) / (len(WORDS) - 1)
    return -(p_top * math.log(p_top) + (len(WORDS) - 1) * rest * math.log(rest))


def test_entropy_bound_respects_gamma() -> None:
    length = 6
    tops = [0.99, 0.5, 0.98, 0.97, 0.3, 0.6]
    entropies = [_entropy(p) for p in tops]
    low_first = sorted(range(length), key=lambda i: entropies[i])
    gamma = entropies[low_first[0]] + entropies[low_first[1]] + entropies[low_first[2]] * 0.5  # room for two
    cfg = SamplerConfig(rule="entropy_bound", entropy_bound=gamma)
    x, fixed = masked_block(length)
    x = denoise_step(
        logits_from([{3 + i: p} for i, p in enumerate(tops)]), x, fixed, 0, cfg, plan_for(cfg, length, length)
    )  # S = L: the floor is one position
    revealed = [i for i in range(length) if x[0, i] != MASK]
    assert sorted(revealed) == sorted(low_first[:2])
    assert sum(entropies[i] for i in revealed) <= gamma
    # γ below the lowest entropy: only the floor (the single most certain position) is revealed
    tiny = SamplerConfig(rule="entropy_bound", entropy_bound=1e-6)
    x, fixed = masked_block(length)
    x = denoise_step(
        logits_from([{3 + i: p} for i, p in enumerate(tops)]),
        x,
        fixed,
        0,
        tiny,
        plan_for(tiny, length, length),
    )
    assert [i for i in range(length) if x[0, i] != MASK] == [low_first[0]]


@pytest.mark.parametrize("confidence", ["prob", "margin", "neg_entropy"])
def test_confidence_kinds_pick_the_most_certain_position(confidence: str) -> None:
    """Banned tokens (p = 0) must not turn entropies into NaN."""
    tops = [0.5, 0.97, 0.3, 0.6]
    cfg = SamplerConfig(rule="low_confidence", confidence=confidence)  # type: ignore[arg-type]
    x, fixed = masked_block(4)
    x = denoise_step(
        logits_from([{3 + i: p} for i, p in enumerate(tops)]),
        x,
        fixed,
        0,
        cfg,
        plan_for(cfg, 4, 4, banned=[PAD]),
    )
    assert [i for i in range(4) if x[0, i] != MASK] == [1]


@pytest.mark.parametrize("rule", ["low_confidence", "threshold", "entropy_bound", "random"])
@pytest.mark.parametrize(("length", "steps"), [(8, 8), (16, 4), (32, 5), (12, 1)])
def test_every_rule_finishes_in_exactly_s_steps(rule: str, length: int, steps: int) -> None:
    gen = torch.Generator().manual_seed(length * 100 + steps)
    cfg = SamplerConfig(rule=rule, threshold=0.99, entropy_bound=0.01, seed=3)  # type: ignore[arg-type]
    plan = plan_for(cfg, length, steps)
    x, fixed = masked_block(length)
    for s in range(steps):
        logits = torch.randn(1, length, V, generator=gen) * 0.5  # flat: nothing is confident
        logits[..., [PAD, EOS]] = -30.0  # keep terminators out, so no padding shortcut
        x = denoise_step(logits, x, fixed, s, cfg, plan)
        if rule == "low_confidence" and s < steps - 1:
            assert (x == MASK).any()
    assert not (x == MASK).any()


def test_temperature_is_reproducible_and_differs_from_greedy() -> None:
    length, steps = 16, 4
    flat = torch.randn(1, length, V, generator=torch.Generator().manual_seed(0)) * 0.3

    def run(cfg: SamplerConfig) -> torch.Tensor:
        plan, (x, fixed) = plan_for(cfg, length, steps), masked_block(length)
        for s in range(steps):
            x = denoise_step(flat, x, fixed, s, cfg, plan)
        return x

    hot = SamplerConfig(rule="low_confidence", temperature=1.0, seed=7)
    assert torch.equal(run(hot), run(hot))
    assert not torch.equal(run(hot), run(SamplerConfig(rule="low_confidence")))
    assert not torch.equal(run(hot), run(SamplerConfig(rule="low_confidence", temperature=1.0, seed=8)))


def test_eos_pads_the_rest() -> None:
    length = 6
    rows = [{4: 0.9}, {5: 0.9}, {EOS: 0.99}, {6: 0.2}, {7: 0.2}, {8: 0.2}]
    cfg = SamplerConfig(rule="threshold", threshold=0.85)
    x, fixed = masked_block(length)
    x = denoise_step(logits_from(rows), x, fixed, 0, cfg, plan_for(cfg, length, 3))
    assert x.tolist() == [[4, 5, EOS, PAD, PAD, PAD]]


def test_banned_tokens_never_appear() -> None:
    length, steps = 8, 4
    rows = [{9: 0.9, 10: 0.05} for _ in range(length)]
    cfg = SamplerConfig(rule="low_confidence")
    plan = plan_for(cfg, length, steps, banned=[9])
    x, fixed = masked_block(length)
    for s in range(steps):
        x = denoise_step(logits_from(rows), x, fixed, s, cfg, plan)
    assert 9 not in x.tolist()[0] and (x == 10).all()


def test_fixed_tokens_never_change() -> None:
    length, steps = 8, 4
    x, fixed = masked_block(length)
    x[0, [1, 5]] = torch.tensor([11, 12])
    fixed[0, [1, 5]] = True
    rows = [{EOS if i == 3 else 4: 0.95} for i in range(length)]  # EOS at 3 pads everything after, but not 5
    cfg = SamplerConfig(rule="low_confidence")
    plan = plan_for(cfg, length, steps)
    for s in range(steps):
        x = denoise_step(logits_from(rows), x, fixed, s, cfg, plan)
    assert x[0, 1] == 11 and x[0, 5] == 12
    assert x.tolist() == [[4, 11, 4, EOS, PAD, 12, PAD, PAD]]


def test_fixed_terminators_do_not_end_the_block() -> None:
    """The prompt tail heading an aligned block may hold an end-of-turn token: it must not pad the reply."""
    x, fixed = masked_block(6)
    x[0, 0], fixed[0, 0] = EOS, True
    cfg = SamplerConfig(rule="low_confidence")
    x = denoise_step(logits_from([{4: 0.9}] * 6), x, fixed, 0, cfg, plan_for(cfg, 6, 1))
    assert x.tolist() == [[EOS, 4, 4, 4, 4, 4]]


def test_min_tokens_prevents_early_eos() -> None:
    length, steps = 8, 2
    rows = [{EOS: 0.9, 5: 0.05} for _ in range(length)]
    cfg = SamplerConfig(rule="low_confidence")
    plan = plan_for(cfg, length, steps, min_len=5)
    x, fixed = masked_block(length)
    for s in range(steps):
        x = denoise_step(logits_from(rows), x, fixed, s, cfg, plan)
    assert x.tolist()[0][:5] == [5] * 5
    assert x[0, 5] == EOS and x.tolist()[0][6:] == [PAD, PAD]


def test_a_draft_guides_the_positions_it_reveals() -> None:
    """Where a draft token is plausible (p ≥ threshold) a revealed position takes it over the model's
    argmax; an implausible draft token, or none (-1), leaves the model's choice."""
    rows = [{4: 0.6, 7: 0.3}, {4: 0.6, 7: 0.01}, {4: 0.9}]
    cfg = SamplerConfig(rule="low_confidence")
    x, fixed = masked_block(3)
    draft = torch.tensor([[7, 7, -1]])
    guided = denoise_step(logits_from(rows), x, fixed, 0, cfg, plan_for(cfg, 3, 1), draft, 0.05)
    assert guided.tolist() == [[7, 4, 4]]
    plain = denoise_step(logits_from(rows), x, fixed, 0, cfg, plan_for(cfg, 3, 1))
    assert plain.tolist() == [[4, 4, 4]]
    # A tensor threshold (the graph runner's static buffer) reads the same as a float.
    same = denoise_step(logits_from(rows), x, fixed, 0, cfg, plan_for(cfg, 3, 1), draft, torch.tensor(0.05))
    assert torch.equal(same, guided)


def test_tensor_step_equals_int_step() -> None:
    """The step index may be a device tensor (graph step mode); the result is the same."""
    length, steps = 8, 4
    logits = torch.randn(1, length, V, generator=torch.Generator().manual_seed(1))
    for rule in ("low_confidence", "threshold", "entropy_bound"):
        cfg = SamplerConfig(rule=rule, threshold=0.5)  # type: ignore[arg-type]
        plan = plan_for(cfg, length, steps)
        a, fixed = masked_block(length)
        b = a.clone()
        for s in range(steps):
            a = denoise_step(logits, a, fixed, s, cfg, plan)
            b = denoise_step(logits, b, fixed, torch.tensor(s), cfg, plan)
            assert torch.equal(a, b)


def test_reveal_first_uses_the_anchor() -> None:
    cfg = SamplerConfig()
    plan = plan_for(cfg, 4, 2, banned=[9])
    x, fixed = masked_block(4)
    anchor = logits_from([{9: 0.8, 7: 0.15}])
    assert reveal_first(anchor, x, fixed, cfg, plan).tolist() == [[7, MASK, MASK, MASK]]  # 9 is banned


def test_sampling_module_has_no_host_syncs() -> None:
    """No .item(), .tolist(), .cpu() or nonzero calls: the module must run inside a CUDA graph."""
    tree = ast.parse(Path(sampling_module.__file__).read_text())
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    names = {f.attr for f in calls if isinstance(f, ast.Attribute)} | {
        f.id for f in calls if isinstance(f, ast.Name)
    }
    assert not names & {"item", "tolist", "nonzero", "cpu", "numpy", "argwhere", "masked_select"}


# -- constraints --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_tok(tmp_path_factory: pytest.TempPathFactory) -> ChatTokenizer:
    corpus = [
        "Use **bold** and # headings and `code` here.",
        "Visit https://www.example.com or mail me@site.org now.",
        "I love it 😀 🚀 so much!",
        "hello there, how are you today? The time is five.",
    ] * 30
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(QUICKTURN.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return ChatTokenizer.from_file(path, QUICKTURN)


def test_banned_presets_catch_unspeakable_tokens(chat_tok: ChatTokenizer) -> None:
    strings = chat_tok.token_strings()
    markdown = set(banned_token_ids(chat_tok, ["markdown"]))
    urls = set(banned_token_ids(chat_tok, ["urls"]))
    emoji = set(banned_token_ids(chat_tok, ["emoji"]))
    assert {i for i, s in enumerate(strings) if "*" in s or "#" in s or "`" in s} <= markdown
    assert {i for i, s in enumerate(strings) if "http" in s or "www." in s or "@" in s} <= urls
    emoji_ids = chat_tok.encode("😀🚀")
    assert emoji_ids and set(emoji_ids) <= emoji
    plain = set(chat_tok.encode("hello there how are you today"))
    everything = set(banned_token_ids(chat_tok))
    assert not plain & everything
    assert not everything & chat_tok._special_ids


def test_infill_and_prefix_templates(chat_tok: ChatTokenizer) -> None:
    head, tail = chat_tok.encode("The time is"), chat_tok.encode(".")
    c = infill(chat_tok, ["The time is", 3, "."])
    assert c.fixed == {i: t for i, t in enumerate(head)} | {len(head) + 3 + i: t for i, t in enumerate(tail)}
    assert c.end_at == len(head) + 3 + len(tail) and c.min_tokens == c.end_at
    open_ended = infill(chat_tok, ["The time is", 4])
    assert open_ended.end_at is None and open_ended.min_tokens == 0
    p = prefix(chat_tok, "hello there")
    assert p.fixed == dict(enumerate(chat_tok.encode("hello there"))) and p.end_at is None


# -- the engine on a tiny random model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    tiny_quickturn(folder, seed=3)
    return folder


@pytest.fixture(scope="module")
def engine(folder: Path) -> DiffusionEngine:
    return DiffusionEngine(load_model(folder), max_context=256)


HELLO = [{"role": "user", "content": "hello there, how are you today?"}]


def _no_stop(engine: DiffusionEngine) -> Constraints:
    return Constraints(banned_ids=tuple(sorted({*engine.cfg.eos_token_ids, engine.cfg.pad_token_id})))


def test_generate_is_deterministic_under_greedy(engine: DiffusionEngine, folder: Path) -> None:
    opts = DecodeOptions(max_tokens=24, steps=4, block_len=8)
    a = engine.generate(HELLO, opts)
    b = engine.generate(HELLO, opts)
    fresh = DiffusionEngine(load_model(folder), max_context=256).generate(HELLO, opts)
    assert a.token_ids == b.token_ids == fresh.token_ids


def test_no_options_decode_as_the_documented_defaults(engine: DiffusionEngine) -> None:
    """``generate(messages)`` is ``DecodeOptions()``, and ``DecodeOptions()`` is every default spelled out
    (the engine's own block length among them)."""
    spelled_out = DecodeOptions(
        max_tokens=48,
        steps=8,
        block_len=engine.block_len,
        sampler=SamplerConfig(),
        constraints=Constraints(),
        draft_threshold=0.05,
        draft_guidance=True,
        early_exit=True,
    )
    implicit = engine.generate(HELLO)
    # This model writes no end token here: 48 tokens, a block of 32 then 16, each spending its 8 steps.
    assert [len(b.token_ids) for b in implicit.blocks] == [32, 16]
    assert [b.steps for b in implicit.blocks] == [8, 8]
    for options in (DecodeOptions(), spelled_out):
        r = engine.generate(HELLO, options)
        assert r.token_ids == implicit.token_ids
        assert [b.steps for b in r.blocks] == [b.steps for b in implicit.blocks]


def test_stream_concatenation_equals_generate(engine: DiffusionEngine) -> None:
    opts = DecodeOptions(max_tokens=20, steps=2, block_len=8, constraints=_no_stop(engine), early_exit=False)
    blocks = list(engine.stream(HELLO, opts))
    whole = engine.generate(HELLO, opts)
    assert [t for b in blocks for t in b.token_ids] == whole.token_ids
    assert [len(b.token_ids) for b in blocks] == [8, 8, 4]
    assert [b.finished for b in blocks] == [False, False, True]
    assert whole.forwards == 2 + 2 + 2 and whole.tokens_per_forward == pytest.approx(20 / 6)


def test_stop_ends_the_reply_within_a_step(engine: DiffusionEngine) -> None:
    opts = DecodeOptions(max_tokens=20, steps=4, block_len=8, constraints=_no_stop(engine), early_exit=False)
    whole = engine.generate(HELLO, opts)
    # Set during the second block's third step: the first block was delivered, the second is dropped.
    stop = SetAfterChecks(4 + 1 + 2)  # 4 step checks + 1 block check in block 1, then 2 steps
    blocks = list(engine.stream(HELLO, opts, stop=stop))
    assert [b.token_ids for b in blocks] == [whole.blocks[0].token_ids]
    assert engine.last_result.stopped and stop.checks == 4 + 1 + 3 + 1  # no 3rd step ran
    assert not whole.stopped
    # The engine is free and its cache intact: the next reply is the same as before.
    assert engine.generate(HELLO, opts).token_ids == whole.token_ids
    assert list(engine.stream(HELLO, opts, stop=SetAfterChecks(0))) == []


@pytest.mark.parametrize(
    "sampler",
    [
        SamplerConfig(rule="low_confidence"),
        SamplerConfig(),
        SamplerConfig(rule="threshold", threshold=0.3),
        SamplerConfig(rule="threshold", threshold=0.05, confidence="margin"),
        SamplerConfig(rule="entropy_bound", entropy_bound=4.0),
        SamplerConfig(rule="random", seed=3),
    ],
    ids=["low_confidence", "default", "threshold_0.3", "threshold_margin", "entropy_bound", "random"],
)
def test_early_exit_changes_no_token_only_the_step_count(
    engine: DiffusionEngine, sampler: SamplerConfig
) -> None:
    prompts = [HELLO, *([{"role": "user", "content": w}] for w in ("hi", "tell me about the sea", "ok"))]
    forwards_saved = 0
    for messages in prompts:
        for steps, block_len in ((4, 8), (8, 16), (8, 8)):
            opts = DecodeOptions(max_tokens=24, steps=steps, block_len=block_len, sampler=sampler)
            full = engine.generate(messages, replace(opts, early_exit=False))
            early = engine.generate(messages, opts)  # early_exit is the default
            assert early.token_ids == full.token_ids, (messages, steps, block_len)
            assert [b.finished for b in early.blocks] == [b.finished for b in full.blocks]
            assert all(b.steps <= steps for b in early.blocks)
            assert full.forwards == steps * len(full.blocks)
            forwards_saved += full.forwards - early.forwards
    # The tiny model is rarely sure of anything; a low threshold still settles some blocks early.
    if sampler.rule == "threshold" and sampler.threshold < 0.5:
        assert forwards_saved > 0


@pytest.mark.parametrize("max_tokens", [1, 5, 13])
def test_max_tokens_is_respected(engine: DiffusionEngine, max_tokens: int) -> None:
    opts = DecodeOptions(max_tokens=max_tokens, steps=1, block_len=8, constraints=_no_stop(engine))
    r = engine.generate(HELLO, opts)
    assert len(r.token_ids) == max_tokens
    capped = engine.generate(
        HELLO,
        replace(opts, max_tokens=40, constraints=Constraints(max_tokens=max_tokens).merged(_no_stop(engine))),
    )
    assert len(capped.token_ids) == max_tokens


def test_prefix_cache_across_turns_is_exact(engine: DiffusionEngine, folder: Path) -> None:
    opts = DecodeOptions(max_tokens=16, steps=4, block_len=8, constraints=_no_stop(engine))
    engine.reset()
    first = engine.generate(HELLO, opts)
    turn2 = [
        *HELLO,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "What time is it?"},
    ]
    cached = engine.generate(turn2, opts)
    assert cached.prefill_tokens < cached.prompt_tokens  # the history came from the cache
    fresh = DiffusionEngine(load_model(folder), max_context=256).generate(turn2, opts)  # own model, own cache
    assert fresh.prefill_tokens == fresh.prompt_tokens
    assert cached.token_ids == fresh.token_ids


def test_constraints_in_the_engine(engine: DiffusionEngine) -> None:
    tok = engine.tokenizer
    c = infill(tok, ["The time is", 2, "."])
    r = engine.generate(HELLO, DecodeOptions(max_tokens=16, steps=2, block_len=8, constraints=c))
    head, tail = tok.encode("The time is"), tok.encode(".")
    assert r.token_ids[: len(head)] == head
    assert r.token_ids[len(head) + 2 :] == tail  # ends right after the template
    p = engine.generate(
        HELLO, DecodeOptions(max_tokens=12, steps=3, block_len=8, constraints=prefix(tok, "hello there"))
    )
    assert p.token_ids[: len(tok.encode("hello there"))] == tok.encode("hello there")
    words = tok.encode("hello there how are you")
    banned = engine.generate(
        HELLO,
        DecodeOptions(max_tokens=16, steps=4, block_len=8, constraints=Constraints(banned_ids=tuple(words))),
    )
    assert not set(banned.token_ids) & set(words)
