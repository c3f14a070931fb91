"""Which copy of a duplicate survives: GPT-4 over other or unknown teachers over GPT-3.5, then the longer
response, then the earlier row (config order), so the choice is deterministic."""

from __future__ import annotations

from array import array

import numpy as np

from prep.rows import Row
from prep.text import response_text

TEACHER_RANK = {"gpt-4": 2, "gpt-3.5": 0}  # any other teacher (or none) ranks 1


class KeepRank:
    """Per-row rank parts as small arrays (5 bytes a row), not rows."""

    def __init__(self) -> None:
        self.teacher = array("b")
        self.length = array("i")

    def observe(self, rows: list[Row]) -> None:
        self.teacher.extend(TEACHER_RANK.get(row.teacher or "", 1) for row in rows)
        self.length.extend(len(response_text(row)) for row in rows)

    def order(self, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """`rows` sorted by their `groups`, best copy first within each group."""
        length = np.frombuffer(self.length, dtype=np.int32)[rows].astype(np.int64)
        teacher = np.frombuffer(self.teacher, dtype=np.int8)[rows].astype(np.int16)
        return rows[np.lexsort((rows, -length, -teacher, groups))]


def drop_all_but_best(groups: np.ndarray, rank: KeepRank, alive: np.ndarray, reason: str) -> list[tuple[int, str]]:
    """Among the alive rows of each group (`groups` holds a group id per row), keep the best, name the rest."""
    live = np.flatnonzero(alive)
    order = rank.order(live, groups[live])
    g = groups[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return [(int(i), reason) for i in order[~first]]
