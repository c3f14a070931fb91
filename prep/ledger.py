"""Counts every row read, kept and dropped (with its reason) per source, so no row disappears unexplained."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any, Protocol

import orjson


class Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


class Ledger:
    def __init__(self, sources: list[str], dropped: Writer | None = None) -> None:
        self.sources = list(sources)  # by index, as batches and the spill record them
        self.read: Counter[str] = Counter({s: 0 for s in sources})
        self.kept: Counter[str] = Counter({s: 0 for s in sources})
        self.dropped: dict[str, Counter[str]] = {s: Counter() for s in sources}
        self._dropped_out = dropped
        self.keeps_rows = dropped is not None  # else a dropped row need not be rebuilt for the record

    def drop(self, source: str, reason: str, *, where: str, row: dict[str, Any] | None, detail: str = "") -> None:
        self.dropped[source][reason] += 1
        if self._dropped_out is not None:
            record = {"source": source, "reason": reason, "where": where, "detail": detail, "row": row}
            try:
                line = orjson.dumps(record, default=_jsonable)
            except orjson.JSONEncodeError as e:  # nested deeper than orjson writes: keep the record, not the row
                line = orjson.dumps({**record, "row": None, "detail": f"{detail} (row not written: {e})"})
            self._dropped_out.write(line + b"\n")

    def keep(self, rows: list[int]) -> None:
        """What the build keeps, per source (by index)."""
        for name, n in zip(self.sources, rows, strict=True):
            self.kept[name] += n

    def per_source(self) -> dict[str, dict[str, Any]]:
        out = {}
        for s in self.read:
            dropped = dict(sorted(self.dropped[s].items()))
            if self.read[s] != self.kept[s] + sum(dropped.values()):
                raise AssertionError(
                    f"ledger for {s!r} does not balance: {self.read[s]} read, {self.kept[s]} kept, {dropped}"
                )
            out[s] = {"read": self.read[s], "kept": self.kept[s], "dropped": dropped}
        return out

    def totals(self) -> dict[str, Any]:
        dropped: Counter[str] = Counter()
        for c in self.dropped.values():
            dropped.update(c)
        return {
            "read": sum(self.read.values()),
            "kept": sum(self.kept.values()),
            "dropped": dict(sorted(dropped.items())),
        }


def _jsonable(value: Any) -> Any:
    """What a parquet row holds beyond JSON: bytes as base64, decimals and durations as text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(value).decode()}
    if type(value).__name__ in ("Decimal", "timedelta"):
        return str(value)
    raise TypeError
