"""Tokenizer + chat template for one family, from a local ``tokenizer.json`` (no hub, no remote code)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from .errors import ModelLoadError
from .families import FamilySpec, Messages


class ChatTokenizer:
    def __init__(self, tokenizer: Tokenizer, family: FamilySpec) -> None:
        self.tokenizer = tokenizer
        self.family = family
        self._special_ids = {
            tokenizer.token_to_id(t.content)
            for t in tokenizer.get_added_tokens_decoder().values()
            if t.special
        }

    @classmethod
    def from_file(cls, path: str | Path, family: FamilySpec) -> ChatTokenizer:
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"tokenizer file not found: {path}")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelLoadError(f"cannot read tokenizer {path}: {exc}") from exc
        return cls(tok, family)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int:
        tid = self.tokenizer.token_to_id(token)
        if tid is None:
            raise ModelLoadError(f"token {token!r} is not in the tokenizer's vocabulary")
        return tid

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special: bool = True) -> str:
        if skip_special:
            ids = [i for i in ids if i not in self._special_ids]
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def render(self, messages: Messages, add_generation_prompt: bool = True) -> str:
        return self.family.render_chat(messages, add_generation_prompt)

    def encode_chat(self, messages: Messages, add_generation_prompt: bool = True) -> list[int]:
        return self.encode(self.render(messages, add_generation_prompt))

    def token_strings(self) -> list[str]:
        """Decoded text of every id (used to build banned-token sets)."""
        return [self.tokenizer.decode([i], skip_special_tokens=False) for i in range(self.vocab_size)]
