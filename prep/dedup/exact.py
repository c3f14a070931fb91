"""Exact duplicates: the same prompt after normalizing case, whitespace and punctuation."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np
import xxhash

from prep.dedup.keep import KeepRank, drop_all_but_best
from prep.rows import Row
from prep.spill import Spill
from prep.text import prompt_text, words


class ExactDedup:
    name = "exact_dedup"

    def __init__(self) -> None:
        self.keys = array("Q")  # 8 bytes a row: a stable hash of the normalized prompt
        self.rank = KeepRank()
        self.dropped = 0

    def observe(self, index: int, row: Row) -> None:
        self.keys.append(xxhash.xxh3_64_intdigest(" ".join(words(prompt_text(row))).encode()))
        self.rank.observe(row)

    def select(self, alive: np.ndarray, spill: Spill) -> list[tuple[int, str]]:
        drops = drop_all_but_best(np.frombuffer(self.keys, dtype=np.uint64), self.rank, alive, "exact_duplicate")
        self.dropped = len(drops)
        return drops

    def report(self) -> dict[str, Any]:
        return {"dropped": self.dropped, "keep_rule": "gpt-4 > other > gpt-3.5, then longer response"}
