"""The mixture: balance strata inside pooled sources (OpenOrca by sub-source and teacher), then cap or
weight each source. Which rows go is a seeded random choice, so a seed fixes the mix."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prep.config import PrepError
from prep.curation import CONTEXT, Context, CorpusStep
from prep.rows import Row
from prep.spill import Spill


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
        # per row, the interned value of each field a stratum can be cut by
        self.fields = {"subsource": array("h"), "teacher": array("h")}
        self.values: dict[str, dict[str | None, int]] = {"subsource": {}, "teacher": {}}
        self._report: dict[str, Any] = {}

    def featurize(self, rows: list[Row]) -> None:
        return None

    def observe(self, rows: list[Row], features: None) -> None:
        for field, codes in self.fields.items():
            values = self.values[field]
            codes.extend(values.setdefault(getattr(row, field), len(values)) for row in rows)

    def _strata(self, by: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """A stratum code per row for the fields in `by`, and a readable label per code."""
        codes = np.zeros(len(self.fields["subsource"]), dtype=np.int64)
        labels = [""]
        for field in by:
            names = list(self.values[field])
            codes = codes * len(names) + np.frombuffer(self.fields[field], dtype=np.int16)
            labels = [f"{a}/{b}" if a else str(b) for a in labels for b in names]
        return codes, labels

    def select(self, alive: np.ndarray, spill: Spill) -> list[tuple[int, str]]:
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
            in_pool = np.isin(source, [names[s] for s in pool.sources]) & alive
            codes, labels = self._strata(pool.by)
            present, sizes = np.unique(codes[in_pool], return_counts=True)
            cap = stratum_cap(sizes, pool.max_share)
            if len(sizes) and cap == 0:
                raise PrepError(
                    f"mixture stratum pool {pool.sources}: max_share {pool.max_share} needs at least "
                    f"{int(np.ceil(1 / pool.max_share))} strata, the pool has {len(sizes)}"
                )
            for code in present:
                keep_lowest(np.flatnonzero(in_pool & (codes == code)), cap, "mixture_stratum_cap")
            pools["+".join(pool.sources)] = {
                "by": pool.by,
                "cap_per_stratum": cap,
                "before": {labels[code]: int(n) for code, n in zip(present, sizes, strict=True)},
            }

        available = {n: int((alive & (source == i)).sum()) for n, i in names.items()}
        weighted = {n: s.weight for n, s in self.config.sources.items() if s.weight is not None}
        total = min((available[n] / (w / sum(weighted.values())) for n, w in weighted.items()), default=0)
        targets = {n: round(total * w / sum(weighted.values())) for n, w in weighted.items()}
        targets |= {n: s.cap for n, s in self.config.sources.items() if s.cap is not None}
        for n, k in targets.items():
            keep_lowest(np.flatnonzero(alive & (source == names[n])), k, "mixture_source_cap")
        self._report = {"strata": pools, "available": available, "targets": targets}
        return drops

    def report(self) -> dict[str, Any]:
        return self._report
