"""Length distribution of the kept rows per source, for the manifest (tokens when a tokenizer is set)."""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from prep.filters.quality import TokenCounter
from prep.rows import Row

PERCENTILES = (1, 10, 50, 90, 99)


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
                "mean": round(float(x.mean()), 1),
                "max": int(x.max()),
                **{f"p{p}": int(v) for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True)},
            }
        return out
