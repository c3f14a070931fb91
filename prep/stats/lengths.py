"""The manifest's `lengths`: per source, the distribution of the kept rows' lengths (prompt and response), in
the unit the length filter counts (tokens when `curation.tokenizer` is set, else characters)."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from prep.rows import Row
from prep.spill import Spill
from prep.step import CONTEXT, Context, Stats

PERCENTILES = (1, 10, 50, 90, 99)


class LengthStats(Stats):
    name = "lengths"

    def __init__(self, config: Any = None, context: Context = CONTEXT) -> None:
        super().__init__(config, context)
        assert context.counter is not None, "a build's context carries its token counter"
        self.counter = context.counter
        self.libraries = self.counter.libraries  # type: ignore[misc]
        self.sources = context.sources
        self.total = array("i")
        self.kept = np.empty(0, dtype=np.int64)
        self.row_sources = np.empty(0, dtype=np.uint16)

    def featurize(self, rows: list[Row]) -> list[int]:
        """In the worker, where the length filter has counted the rows (in their memo): tokenizing is the cost."""
        return [sum(self.counter.prompt_response(row)) for row in rows]

    def observe(self, rows: list[Row], features: list[int]) -> None:
        self.total.extend(features)

    def measure(self, kept: np.ndarray, spill: Spill) -> None:
        self.kept = np.flatnonzero(kept)
        self.row_sources = np.frombuffer(spill.sources, dtype=np.uint16)

    def report(self) -> dict[str, Any]:
        lengths = np.frombuffer(self.total, dtype=np.int32)[self.kept]
        source = self.row_sources[self.kept]
        out: dict[str, Any] = {"unit": self.counter.unit}
        for i, name in enumerate(self.sources):
            x = lengths[source == i]
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
