"""Which copy of a duplicate survives: GPT-4 over other or unknown teachers over GPT-3.5, then the longer
response, then the earlier row (config order), so the choice is deterministic."""

from __future__ import annotations

from array import array

import numpy as np

from prep.rows import Row
from prep.spill import Spill
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


def components(edges: np.ndarray, n: int) -> np.ndarray:
    """The duplicate group of each of `n` rows, given the pairs found alike (edges x 2): rows linked by a chain of
    pairs share a group, even where their own pair fell short of the threshold."""
    from scipy.sparse import coo_matrix  # loaded by the dedup that runs, not to check a config
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def keep_best(groups: np.ndarray, rank: KeepRank, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Among the alive rows of each group (`groups` holds a group id per row) the best stays: (the other rows,
    and for each of them the row its group keeps)."""
    live = np.flatnonzero(alive)
    order = rank.order(live, groups[live])
    g = groups[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    head = order[np.flatnonzero(first)[np.cumsum(first) - 1]]
    return order[~first], head[~first]


def drop_all_but_best(groups: np.ndarray, rank: KeepRank, alive: np.ndarray, reason: str) -> list[tuple[int, str]]:
    """Among the alive rows of each group, keep the best, name the rest."""
    return [(int(i), reason) for i in keep_best(groups, rank, alive)[0]]


def nearest_partners(pairs: np.ndarray, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's most similar partner among the `pairs` found (both directions): (rows ascending, partner,
    similarity)."""
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    partner = np.concatenate([pairs[:, 1], pairs[:, 0]])
    sims = np.concatenate([similarity, similarity])
    order = np.lexsort((-sims, rows))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    best = order[first]
    return rows[best], partner[best], sims[best]


def duplicate_details(
    spill: Spill,
    dropped: np.ndarray,
    kept: np.ndarray,
    to_kept: np.ndarray,
    pairs: np.ndarray,
    similarity: np.ndarray,
    measure: str,
    threshold: float,
) -> list[str]:
    """What the --dropped file says of each dropped duplicate: the row its group kept, by id, and their
    similarity; when that is below the threshold (a chain of similar rows joined them), also the row it was
    found similar to."""
    rows, partner, best = nearest_partners(pairs, similarity)

    def row_id(index: int) -> str:
        return spill.row(int(index)).id

    out = []
    for d, k, sim in zip(dropped.tolist(), kept.tolist(), to_kept.tolist(), strict=True):
        text = f"duplicate of {row_id(k)} (kept), {measure} {sim:.3f}"
        if sim < threshold:
            at = int(np.searchsorted(rows, d))
            text += f"; joined to it through {row_id(partner[at])}, {measure} {best[at]:.3f}"
        out.append(text)
    return out
