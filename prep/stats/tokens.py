"""The manifest's `tokens`: per source and in total, the kept rows' tokens and trainable tokens as Axolotl will
count them for the recipes (their Llama-2-chat template, prep/tokens.py), sampled above EXACT_ROWS rows. Only
when `curation.tokenizer` is set; counted from the spill, in the output's order, as the file will hold them."""

from __future__ import annotations

from typing import Any

import numpy as np

from prep.errors import PrepError
from prep.spill import Spill
from prep.step import CONTEXT, Context, Stats
from prep.tokens import DEFAULT_TEMPLATE, ChatTokens, TokenCountError, count_rows


class TokenStats(Stats):
    name = "tokens"
    libraries = ("transformers", "tokenizers")

    @classmethod
    def applies(cls, context: Context) -> bool:
        return context.counter is not None and context.counter.tokenizer is not None

    def __init__(self, config: Any = None, context: Context = CONTEXT) -> None:
        super().__init__(config, context)
        assert context.counter is not None and context.counter.tokenizer is not None, "see applies()"
        self.tokenizer = context.counter.name
        try:  # the tokenizer the length filter loaded, not a second copy
            self.chat = ChatTokens(context.counter.tokenizer, DEFAULT_TEMPLATE.read_text(encoding="utf-8"))
        except TokenCountError as e:
            raise PrepError(f"curation.tokenizer: {e}; the manifest's token counts need one") from e
        self.sources = context.sources
        self.progress = context.progress
        self._report: dict[str, Any] = {}

    def measure(self, kept: np.ndarray, spill: Spill) -> None:
        order = spill.order(np.flatnonzero(kept))  # spill positions, in the output's order
        index: dict[str, list[int]] = {}  # each source's rows as their places in the output: a sample is then
        for place, source in enumerate(np.frombuffer(spill.sources, dtype=np.uint16)[order].tolist()):
            index.setdefault(self.sources[source], []).append(place)  # the one `prep fit` draws from the file
        counted = count_rows(
            index,
            lambda places: (spill.row(int(order[p])).conversations for p in places),
            self.chat,
            progress=self.progress,
        )
        self._report = {"tokenizer": self.tokenizer, "chat_template": DEFAULT_TEMPLATE.name, **counted.to_json()}

    def report(self) -> dict[str, Any]:
        return self._report
