"""The mixture: balance strata inside pooled sources (OpenOrca by sub-source and teacher), then cap or
weight each source. Which rows go is a seeded random choice, so a seed fixes the mix."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prep.errors import PrepError
from prep.rows import Row
from prep.spill import Spill
from prep.step import CONTEXT, Context, CorpusStep

MAX_LISTED_STRATA = 1000  # the manifest lists the largest strata of a pool; `strata` counts them all


class StratumConfig(BaseModel):
    """Sources pooled and balanced by row fields, so one sub-source cannot swamp the pool."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(min_length=1)
    by: list[Literal["subsource", "teacher"]] = Field(min_length=1)
    max_share: float = Field(gt=0, le=1, description="no stratum keeps more than this share of the pool")


class SourceShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap: int | None = Field(None, ge=0, description="keep at most this many rows")
    weight: float | None = Field(None, gt=0, allow_inf_nan=False, description="share among the weighted sources")

    @model_validator(mode="after")
    def _one(self) -> SourceShare:
        if (self.cap is None) == (self.weight is None):
            raise ValueError("give a source either `cap` or `weight`")
        return self


class MixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceShare] = Field(default_factory=dict, description="unlisted sources keep all rows")
    strata: list[StratumConfig] = Field(default_factory=list)
    shuffle: bool = True


def stratum_cap(sizes: np.ndarray, max_share: float) -> int:
    """The largest per-stratum cap c with c <= max_share * sum(min(size, c)): no stratum above its share."""
    lo, hi = 0, int(sizes.max(initial=0))
    while lo < hi:
        c = (lo + hi + 1) // 2
        if c <= max_share * np.minimum(sizes, c).sum():
            lo = c
        else:
            hi = c - 1
    return lo


class Mixture(CorpusStep):
    name = "mixture"
    Config = MixConfig

    def __init__(self, config: MixConfig, context: Context = CONTEXT) -> None:
        self.config = config
        self.shuffles = config.shuffle
        self.sources = list(context.sources)
        self.seed = context.seed
        # per row, the interned value of each field a stratum can be cut by (32-bit: a source may name more
        # than 32,767 distinct subsources)
        self.fields = {"subsource": array("i"), "teacher": array("i")}
        self.values: dict[str, dict[str | None, int]] = {"subsource": {}, "teacher": {}}
        self._report: dict[str, Any] = {}
        self._warnings: list[str] = []

    def featurize(self, rows: list[Row]) -> None:
        return None

    def observe(self, rows: list[Row], features: None) -> None:
        for field, codes in self.fields.items():
            values = self.values[field]
            codes.extend(values.setdefault(getattr(row, field), len(values)) for row in rows)

    def _strata(self, by: Sequence[str]) -> np.ndarray:
        """A stratum code per row for the fields in `by` (an int64 mixed radix of their value codes)."""
        codes = np.zeros(len(self.fields["subsource"]), dtype=np.int64)
        for field in by:
            codes = codes * len(self.values[field]) + np.frombuffer(self.fields[field], dtype=np.int32)
        return codes

    @staticmethod
    def _label(by: Sequence[str], labels: dict[str, list[str]], code: int) -> str:
        """The readable label of one stratum code, from each field's value labels."""
        parts = []
        for field in reversed(by):
            code, value = divmod(code, len(labels[field]))
            parts.append(labels[field][value])
        return "/".join(reversed(parts))

    def run(self, alive: np.ndarray, spill: Spill) -> list[tuple[int, str]]:
        priority = np.random.default_rng(self.seed).random(len(alive))  # lower goes first
        source = np.frombuffer(spill.sources, dtype=np.uint16)
        names = {n: i for i, n in enumerate(self.sources)}
        drops: list[tuple[int, str]] = []

        def keep_lowest(rows: np.ndarray, k: int, reason: str) -> None:
            if len(rows) > k:
                for i in rows[np.argsort(priority[rows], kind="stable")[k:]]:
                    alive[i] = False
                    drops.append((int(i), reason))

        pools = {}
        for pool in self.config.strata:
            in_pool = np.flatnonzero(np.isin(source, [names[s] for s in pool.sources]) & alive)
            codes = self._strata(pool.by)[in_pool]
            present, sizes = np.unique(codes, return_counts=True)
            cap = stratum_cap(sizes, pool.max_share)
            if len(sizes) and cap == 0:
                raise PrepError(
                    f"mixture stratum pool {pool.sources}: max_share {pool.max_share} needs at least "
                    f"{int(np.ceil(1 / pool.max_share))} strata, the pool has {len(sizes)}"
                )
            # by stratum, lowest priority first (ties by row): each stratum keeps its first `cap` rows; one
            # sort for all strata (a pass over the pool per stratum was quadratic with 40k subsources)
            order = np.lexsort((priority[in_pool], codes))
            firsts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
            rank = np.arange(len(order)) - np.repeat(firsts, np.diff(np.r_[firsts, len(order)]))
            for i in in_pool[order[rank >= cap]].tolist():
                alive[i] = False
                drops.append((i, "mixture_stratum_cap"))
            largest = np.sort(np.argsort(-sizes, kind="stable")[:MAX_LISTED_STRATA])
            labels = {field: [str(v) for v in self.values[field]] for field in pool.by}
            pools["+".join(pool.sources)] = {
                "by": pool.by,
                "cap_per_stratum": cap,
                "strata": len(sizes),
                "before": {self._label(pool.by, labels, int(present[i])): int(sizes[i]) for i in largest},
            }

        available = {n: int((alive & (source == i)).sum()) for n, i in names.items()}
        weighted = {n: s.weight for n, s in self.config.sources.items() if s.weight is not None}
        total = min((available[n] / (w / sum(weighted.values())) for n, w in weighted.items()), default=0)
        targets = {n: round(total * w / sum(weighted.values())) for n, w in weighted.items()}
        targets |= {n: s.cap for n, s in self.config.sources.items() if s.cap is not None}
        for n, k in targets.items():
            keep_lowest(np.flatnonzero(alive & (source == names[n])), k, "mixture_source_cap")
        self._warnings = [
            f"mixture: weighted source {n!r} has no rows left, so every weighted source keeps 0 rows (weights fix "
            "the shares); remove its weight or fix the source"
            for n in weighted
            if available[n] == 0
        ]
        self._report = {"strata": pools, "available": available, "targets": targets}
        return drops

    def warnings(self) -> list[str]:
        return self._warnings

    def report(self) -> dict[str, Any]:
        return self._report
