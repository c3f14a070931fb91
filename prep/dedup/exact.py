"""Exact duplicates: the same prompt after normalizing case, whitespace and punctuation."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from prep.dedup.keep import KeepRank, drop_all_but_best
from prep.rows import Row
from prep.spill import Spill
from prep.step import CONTEXT, Context, CorpusStep


class ExactDedup(CorpusStep):
    name = "exact_dedup"

    def __init__(self, config: object = None, context: Context = CONTEXT) -> None:
        self.keys = array("Q")  # 8 bytes a row: a stable hash of the normalized prompt's words
        self.rank = KeepRank()
        self.dropped = 0

    def featurize(self, rows: list[Row]) -> list[int]:
        from prep.hashing import prompt_words, sequence_hash

        return [sequence_hash(prompt_words(row)[0]) for row in rows]

    def observe(self, rows: list[Row], keys: list[int]) -> None:
        self.keys.extend(keys)
        self.rank.observe(rows)

    def run(self, alive: np.ndarray, spill: Spill) -> list[tuple[int, str]]:
        drops = drop_all_but_best(np.frombuffer(self.keys, dtype=np.uint64), self.rank, alive, "exact_duplicate")
        self.dropped = len(drops)
        return drops

    def report(self) -> dict[str, Any]:
        return {"dropped": self.dropped, "keep_rule": "gpt-4 > other > gpt-3.5, then longer response"}
