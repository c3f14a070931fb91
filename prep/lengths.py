"""Row lengths, in tokens when a tokenizer is set, else characters: counted once per row for the length
filter and for the manifest's distribution of the kept rows per source (prep/stats/lengths.py)."""

from __future__ import annotations

from typing import Any

from prep.errors import PrepError
from prep.rows import Row
from prep.text import response_text


class TokenCounter:
    """Prompt and response lengths in tokens when a tokenizer is set, else characters. Kept in the row's memo, so
    the length filter and the length statistics tokenize each row once."""

    def __init__(self, tokenizer: str | None) -> None:
        self.name = tokenizer  # a hub id or a local directory, as the config gives it
        self.unit = "tokens" if tokenizer else "chars"
        self.libraries = ("transformers", "tokenizers") if tokenizer else ()
        self._tok = None
        if tokenizer:
            from transformers import AutoTokenizer  # heavy import, only when lengths are in tokens

            try:
                self._tok = AutoTokenizer.from_pretrained(tokenizer)
            except (OSError, ValueError) as e:  # transformers' "not found / offline / not a tokenizer"
                raise PrepError(
                    f"curation.tokenizer {tokenizer!r}: cannot load it ({str(e).splitlines()[0][:200]}); give a local "
                    "tokenizer directory, or remove the line to count lengths in characters"
                ) from e

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer, or None when lengths are in characters."""
        return self._tok

    def prompt_response(self, row: Row) -> tuple[int, int]:
        if "lengths" in row.memo:
            return row.memo["lengths"]
        prompt = "\n".join(t["value"] for t in row.conversations if t["from"] != "gpt")
        answer = response_text(row)
        if self._tok is None:
            counts = (len(prompt), len(answer))
        else:
            ids = self._tok([prompt, answer], add_special_tokens=False)["input_ids"]
            counts = (len(ids[0]), len(ids[1]))
        row.memo["lengths"] = counts
        return counts
