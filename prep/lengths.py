"""Row lengths, in tokens when a tokenizer is set, else characters: counted once per row for the length
filter and for the manifest's distribution of the kept rows per source."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from prep.errors import PrepError
from prep.rows import Row
from prep.text import response_text

PERCENTILES = (1, 10, 50, 90, 99)


class TokenCounter:
    """Prompt and response lengths in tokens when a tokenizer is set, else characters. Kept in the row's memo, so
    the length filter and the length statistics tokenize each row once."""

    def __init__(self, tokenizer: str | None) -> None:
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


class LengthStats:
    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self.total = array("i")

    def featurize(self, rows: list[Row]) -> list[int]:
        """In the worker, where the length filter has just counted the row (tokenizing is the costly part)."""
        return [sum(self.counter.prompt_response(row)) for row in rows]

    def observe(self, totals: list[int]) -> None:
        self.total.extend(totals)

    def report(self, kept: np.ndarray, source: np.ndarray, names: list[str]) -> dict[str, Any]:
        lengths = np.frombuffer(self.total, dtype=np.int32)[kept]
        out: dict[str, Any] = {"unit": self.counter.unit}
        for i, name in enumerate(names):
            x = lengths[source[kept] == i]
            if len(x) == 0:
                out[name] = {"rows": 0}
                continue
            out[name] = {
                "rows": len(x),
                "total": int(x.sum()),
                "mean": round(float(x.mean()), 1),
                "max": int(x.max()),
                **{f"p{p}": int(v) for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)},
            }
        return out
