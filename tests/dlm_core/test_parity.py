"""Every family loads from its real on-disk format and computes what the reference architecture computes.

Tiny random checkpoints are written with the released config keys and tensor names; our loader reads
them, and the logits are compared with transformers' LLaMA / Qwen2 / Qwen3 run under the family's
attention pattern (a custom 4D mask, eager attention, fp32). The cached paths (prefill + block step)
are checked against one uncached pass, and the aligned block generation of Fast-dLLM v2 and SDAR
against a plain re-implementation of their reference generators.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlm_core import Constraints, DecodeOptions, DiffusionEngine, SamplerConfig, load_model
from dlm_core.families import FAMILIES, detect_family
from dlm_core.loader import LoadedModel
from dlm_core.model import Transformer, block_causal_mask
from dlm_core.sampling import reveal_schedule

from .family_fixtures import Fixture, additive_mask, reference_model, write_family
from .helpers import tiny_quickturn

FAMILY_NAMES = ("llada", "dream", "fast_dllm_v2", "sdar")
BLOCK = {"fast_dllm_v2": 8, "sdar": 4}
TOL = 1e-4


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Fixture, LoadedModel]]:
    root = tmp_path_factory.mktemp("families")
    out = {}
    for i, name in enumerate(FAMILY_NAMES):
        fx = write_family(root / name, name, seed=10 + i, block=BLOCK.get(name, 8))
        out[name] = (fx, load_model(fx.folder))
    return out


def _tokens(n: int, vocab: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(seed))


def _pattern(loaded: LoadedModel, n: int) -> torch.Tensor:
    cfg = loaded.config
    if cfg.attention == "full":
        return torch.ones(n, n, dtype=torch.bool)
    return block_causal_mask(n, cfg.block_size)[0, 0]


# -- config translation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_config_translation(fixtures, name: str) -> None:
    fx, lm = fixtures[name]
    cfg, ids = lm.config, fx.ids
    assert lm.family.name == name and cfg.family == name
    expected = {
        "llada": lambda: dict(
            attention="full",
            shift_logits=False,
            qkv_bias=False,
            qk_norm=False,
            rope_theta=500000.0,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            mask_token_id=ids["<|mdm_mask|>"],
            eos_token_ids=(ids["<|endoftext|>"], ids["<|eot_id|>"]),
            pad_token_id=ids["<|endoftext|>"],
            num_kv_heads=4,
            max_position_embeddings=4096,
            gen_block_size=32,
        ),
        "dream": lambda: dict(
            attention="full",
            shift_logits=True,
            qkv_bias=True,
            qk_norm=False,
            rope_theta=1e6,
            rms_norm_eps=1e-6,
            tie_word_embeddings=False,
            mask_token_id=ids["<|mask|>"],
            eos_token_ids=(ids["<|endoftext|>"], ids["<|im_end|>"]),
            pad_token_id=ids["<|endoftext|>"],
            num_kv_heads=2,
            max_position_embeddings=8192,
        ),  # 131072 capped
        "fast_dllm_v2": lambda: dict(
            attention="block_causal",
            block_size=8,
            gen_block_size=8,
            shift_logits=True,
            ar_block_start=True,
            qkv_bias=True,
            tie_word_embeddings=True,
            mask_token_id=ids["|<MASK>|"],
            eos_token_ids=(ids["<|im_end|>"], ids["<|endoftext|>"]),
            pad_token_id=ids["<|endoftext|>"],
        ),
        "sdar": lambda: dict(
            attention="block_causal",
            block_size=4,
            gen_block_size=4,
            shift_logits=False,
            qk_norm=True,
            qkv_bias=False,
            head_dim=16,
            mask_token_id=ids["<|MASK|>"],
            eos_token_ids=(ids["<|endoftext|>"], ids["<|im_end|>"]),
            pad_token_id=ids["<|endoftext|>"],
        ),
    }[name]()
    for key, value in expected.items():
        assert getattr(cfg, key) == value, (key, getattr(cfg, key), value)


def test_real_checkpoint_ids_are_the_documented_defaults() -> None:
    """Without ids in config.json or tokenizer, the documented ids of the released checkpoints apply."""
    no_lookup = lambda token: None  # noqa: E731
    big = {
        "vocab_size": 152064,
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    }
    assert FAMILIES["dream"].to_config({**big, "model_type": "Dream"}, no_lookup).mask_token_id == 151666
    fd = FAMILIES["fast_dllm_v2"].to_config({**big, "model_type": "Fast_dLLM_Qwen"}, no_lookup)
    assert (fd.mask_token_id, fd.eos_token_ids, fd.block_size) == (151665, (151645, 151643), 32)
    sd = FAMILIES["sdar"].to_config({**big, "model_type": "sdar"}, no_lookup)
    assert (sd.mask_token_id, sd.eos_token_ids, sd.block_size) == (151669, (151643, 151645), 4)
    llada = {
        "model_type": "llada",
        "d_model": 64,
        "n_layers": 1,
        "n_heads": 4,
        "vocab_size": 126464,
        "embedding_size": 126464,
        "mlp_hidden_size": 128,
    }
    cfg = FAMILIES["llada"].to_config(llada, no_lookup)
    assert (cfg.mask_token_id, cfg.eos_token_ids, cfg.pad_token_id) == (126336, (126081, 126348), 126081)


@pytest.mark.parametrize(
    ("cfg_json", "name"),
    [
        ({"architectures": ["LLaDAModelLM"]}, "llada"),
        ({"architectures": ["DreamModel"]}, "dream"),
        ({"model_type": "Dream"}, "dream"),
        ({"architectures": ["Fast_dLLM_QwenForCausalLM"]}, "fast_dllm_v2"),
        ({"model_type": "sdar"}, "sdar"),
        ({"model_type": "quickturn"}, "quickturn"),
    ],
)
def test_detection(cfg_json: dict, name: str) -> None:
    assert detect_family(cfg_json).name == name


# -- logits parity with transformers -----------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_logits_match_transformers(fixtures, name: str) -> None:
    fx, lm = fixtures[name]
    ref = reference_model(fx)
    n = 24
    tokens = _tokens(n, lm.config.vocab_size, seed=1)
    visible = _pattern(lm, n)
    with torch.no_grad():
        ours = lm.model.forward_masked(tokens, visible[None, None])
        theirs = ref(input_ids=tokens, attention_mask=additive_mask(visible)).logits
    diff = (ours - theirs).abs().max().item()
    print(f"parity {name}: max |Δlogit| = {diff:.2e} (logit scale {theirs.abs().max().item():.1f})")
    assert diff <= TOL


@pytest.mark.parametrize("name", ["llada", "fast_dllm_v2"])
def test_sharded_checkpoint_loads(fixtures, tmp_path: Path, name: str) -> None:
    fx, lm = fixtures[name]
    seed = 10 + FAMILY_NAMES.index(name)  # the same weights as the module fixture
    sharded = write_family(tmp_path / "sharded", name, seed=seed, shards=3, block=BLOCK.get(name, 8))
    assert (sharded.folder / "model.safetensors.index.json").is_file()
    assert not (sharded.folder / "model.safetensors").exists()
    lm3 = load_model(sharded.folder)
    tokens = _tokens(16, lm.config.vocab_size)
    with torch.no_grad():
        assert torch.equal(lm3.model.forward_masked(tokens, None), lm.model.forward_masked(tokens, None))


# -- cached paths ------------------------------------------------------------------------------------------


def _prefix_mask(n_ctx: int, n_block: int, ctx_visible: torch.Tensor) -> torch.Tensor:
    """Context rows follow the context pattern; block rows see the whole context and the whole block."""
    n = n_ctx + n_block
    m = torch.zeros(n, n, dtype=torch.bool)
    m[:n_ctx, :n_ctx] = ctx_visible
    m[n_ctx:, :] = True
    return m


def _check_cached_paths(model: Transformer, chunks: list[int], n_block: int) -> None:
    n_ctx = sum(chunks)
    tokens = _tokens(n_ctx + n_block, model.cfg.vocab_size, seed=3)
    ctx_visible = (
        torch.ones(n_ctx, n_ctx, dtype=torch.bool)
        if model.cfg.attention == "full"
        else block_causal_mask(n_ctx, model.cfg.block_size)[0, 0]
    )
    with torch.no_grad():
        full = model.forward_masked(tokens, _prefix_mask(n_ctx, n_block, ctx_visible)[None, None])
        model.setup_cache(64)
        start = 0
        for size in chunks:
            ctx_logits = model.forward_context(
                tokens[:, start : start + size], start=start, last_logits_only=False
            )
            if (
                model.cfg.attention != "full" or len(chunks) == 1
            ):  # full attention: later tokens change earlier ones
                assert (ctx_logits - full[:, start : start + size]).abs().max() < 1e-4
            start += size
        positions = torch.arange(n_ctx, n_ctx + n_block)
        block_logits = model.forward_block(tokens[:, n_ctx:], positions, n_ctx)
    assert (block_logits - full[:, n_ctx:]).abs().max() < 1e-4


@pytest.mark.parametrize(
    ("attention", "block_size", "chunks"),
    [("block_causal", 1, [5, 6, 1]), ("block_causal", 4, [8, 4, 8]), ("full", 1, [13])],
)
def test_cached_paths_equal_one_masked_pass(
    tmp_path: Path, attention: str, block_size: int, chunks: list[int]
) -> None:
    lm = tiny_quickturn(tmp_path / "m", attention=attention, block_size=block_size)
    _check_cached_paths(lm.model, chunks, n_block=8)


@pytest.mark.parametrize("name", ["sdar", "fast_dllm_v2"])
def test_cached_paths_equal_one_masked_pass_imported(fixtures, name: str) -> None:
    _, lm = fixtures[name]
    b = lm.config.block_size
    _check_cached_paths(lm.model, [2 * b, b], n_block=b)


@pytest.mark.parametrize("name", ["dream", "fast_dllm_v2"])
def test_shifted_logits_follow_the_reference(fixtures, name: str) -> None:
    """Position i of a block is scored by the output at i-1: the context's last logits for i = 0."""
    fx, lm = fixtures[name]
    engine = DiffusionEngine(lm, max_context=64)
    b = lm.config.block_size if lm.config.aligned_blocks else 8
    n_ctx = 2 * b
    tokens = _tokens(n_ctx + b, lm.config.vocab_size, seed=5)
    ctx_visible = _pattern(lm, n_ctx)
    with torch.no_grad():
        engine._prefill(tokens[0, :n_ctx].tolist())
        assert len(engine._cached) == n_ctx
        ours = engine._block_logits(tokens[:, n_ctx:], torch.arange(n_ctx, n_ctx + b), n_ctx)
        ref = reference_model(fx)
        theirs = ref(
            input_ids=tokens, attention_mask=additive_mask(_prefix_mask(n_ctx, b, ctx_visible))
        ).logits
    expected = theirs[:, n_ctx - 1 : n_ctx - 1 + b]  # shifted by one
    assert (ours - expected).abs().max().item() <= TOL


# -- aligned block generation (Fast-dLLM v2, SDAR) --------------------------------------------------------------


def _reference_block_generate(
    lm: LoadedModel, prompt: list[int], n_reply: int, steps: int, banned: list[int]
) -> list[int]:
    """Uncached re-implementation of the reference generators (greedy, low-confidence schedule)."""
    cfg, model = lm.config, lm.model
    b, mask = cfg.block_size, cfg.mask_token_id
    bias = torch.zeros(cfg.vocab_size)
    bias[banned] = float("-inf")
    bias[mask] = float("-inf")
    seq, start = list(prompt), (len(prompt) // b) * b

    def logits_of(tokens: list[int]) -> torch.Tensor:
        t = torch.tensor([tokens])
        return model.forward_masked(t, block_causal_mask(len(tokens), b))[0]

    while len(seq) - len(prompt) < n_reply:
        head = seq[start:]
        block = head + [mask] * (b - len(head))
        if cfg.ar_block_start and not head and start > 0:  # next token from the last cached position
            block[0] = int((logits_of(seq[:start] + block)[start - 1] + bias).argmax())
        free = block.count(mask)
        for k in reveal_schedule(free, min(steps, free)):
            full = logits_of(seq[:start] + block)
            lg = full[start : start + b]
            if cfg.shift_logits:
                lg = torch.cat([full[start - 1 : start] if start else lg[:1], lg[:-1]])
            probs = torch.softmax(lg + bias, dim=-1)
            cand = probs.argmax(-1)
            conf = probs.gather(-1, cand[:, None])[:, 0]
            order = sorted((i for i in range(b) if block[i] == mask), key=lambda i: (-float(conf[i]), i))
            for i in order[:k]:
                block[i] = int(cand[i])
        seq = seq[:start] + block
        start += b
    return seq[len(prompt) : len(prompt) + n_reply]


@pytest.mark.parametrize("name", ["sdar", "fast_dllm_v2"])
@pytest.mark.parametrize("tail", [0, 3])
def test_aligned_generation_matches_reference(fixtures, name: str, tail: int) -> None:
    _, lm = fixtures[name]
    b = lm.config.block_size
    prompt = _tokens(2 * b + tail, lm.config.vocab_size, seed=7 + tail)[0].tolist()
    n_reply = (b - tail) + 2 * b
    banned = sorted({*lm.config.eos_token_ids, lm.config.pad_token_id})  # never stop early
    engine = DiffusionEngine(lm, max_context=128)
    steps = 2
    sampler = SamplerConfig(rule="low_confidence")
    result = engine.generate_ids(
        prompt,
        DecodeOptions(
            max_tokens=n_reply,
            steps=steps,
            sampler=sampler,
            constraints=Constraints(banned_ids=tuple(banned)),
        ),
    )
    with torch.no_grad():
        expected = _reference_block_generate(lm, prompt, n_reply, steps, banned)
    assert result.token_ids == expected
    assert [len(blk.token_ids) for blk in result.blocks] == [b - tail, b, b]
    assert len(engine._cached) % b == 0  # only whole attention blocks are ever cached


def test_aligned_generation_short_prompt(fixtures) -> None:
    """A prompt shorter than one block: nothing is cached, the prompt heads the first block."""
    _, lm = fixtures["fast_dllm_v2"]
    b = lm.config.block_size
    prompt = _tokens(3, lm.config.vocab_size, seed=11)[0].tolist()
    banned = sorted({*lm.config.eos_token_ids, lm.config.pad_token_id})
    engine = DiffusionEngine(lm, max_context=64)
    result = engine.generate_ids(
        prompt,
        DecodeOptions(
            max_tokens=b - 3 + b,
            steps=2,
            sampler=SamplerConfig(rule="low_confidence"),
            constraints=Constraints(banned_ids=tuple(banned)),
        ),
    )
    with torch.no_grad():
        assert result.token_ids == _reference_block_generate(lm, prompt, b - 3 + b, 2, banned)


# -- chat templates ----------------------------------------------------------------------------------------


def test_chat_templates() -> None:
    msgs = [
        {"role": "user", "content": " Hi there "},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Time?"},
    ]
    assert FAMILIES["llada"].render_chat(msgs, True) == (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nTime?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    chatml = (
        "<|im_start|>user\n Hi there <|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nTime?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert FAMILIES["sdar"].render_chat(msgs, True) == chatml
    assert FAMILIES["dream"].render_chat(msgs, True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + chatml
    )
    assert FAMILIES["fast_dllm_v2"].render_chat(msgs, True) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        + chatml
    )
    with_system = [{"role": "system", "content": "Be brief."}, *msgs[:1]]
    assert FAMILIES["dream"].render_chat(with_system, False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi there <|im_end|>\n"
    )


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_chat_specials_encode_as_single_tokens(fixtures, name: str) -> None:
    fx, lm = fixtures[name]
    ids = lm.tokenizer.encode_chat([{"role": "user", "content": "hello"}])
    specials = set(fx.ids.values())
    rendered = lm.tokenizer.render([{"role": "user", "content": "hello"}])
    n_special_strings = sum(rendered.count(t) for t in fx.ids)
    assert sum(1 for i in ids if i in specials) == n_special_strings
