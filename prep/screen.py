"""The per-row work of `prep build` on a batch of rows: the row filters, then what each corpus step keeps of
the surviving rows (dedup keys, LSH band hashes, lengths). It is pure, so batches can run in worker
processes while the main process reads sources and keeps the ledger and the spill; results come back in
submission order, so the output does not depend on the number of workers."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from prep.curation import RowFilter, Verdict
from prep.lengths import LengthStats
from prep.rows import Row


class Featurizer(Protocol):
    def featurize(self, rows: list[Row]) -> Any: ...


@dataclass
class Screened:
    verdicts: list[Verdict | None]  # per row: why a filter dropped it, or None
    features: list[Any]  # per corpus step, for the surviving rows in order
    lengths: list[int]  # per surviving row


class Screen:
    def __init__(self, filters: list[RowFilter], steps: Sequence[Featurizer], lengths: LengthStats) -> None:
        self.checks = [f.check for f in filters]
        self.steps = steps
        self.lengths = lengths

    def __call__(self, rows: list[Row]) -> Screened:
        verdicts: list[Verdict | None] = []
        kept: list[Row] = []
        lengths: list[int] = []
        for row in rows:
            verdict = None
            for check in self.checks:
                verdict = check(row)
                if verdict is not None:
                    break
            verdicts.append(verdict)
            if verdict is None:
                kept.append(row)
                lengths += self.lengths.featurize([row])  # now, while the length filter's count is cached
        return Screened(verdicts, [step.featurize(kept) for step in self.steps], lengths)


def default_workers() -> int:
    """One worker per usable core; none (work in the main process) on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores if cores > 1 else 0


_screen: Screen | None = None  # the forked workers' copy


def _work(payload: bytes) -> Screened:
    assert _screen is not None
    return _screen([Row(**r) for r in orjson.loads(payload)])


class Screening:
    """Screens batches in `workers` forked processes (which inherit the loaded models and indexes instead of
    pickling them), at most two batches per worker in flight so memory stays bounded; `workers=0` screens in
    the calling process."""

    def __init__(self, screen: Screen, workers: int) -> None:
        global _screen
        self.screen = screen
        self.workers = workers
        self.pending: deque[tuple[Any, Any]] = deque()
        self.pool = None
        if workers:
            _screen = screen
            self.pool = multiprocessing.get_context("fork").Pool(workers)

    def submit(self, batch: Any, rows: list[Row], lines: list[bytes]) -> Iterator[tuple[Any, Screened]]:
        """Queue `batch` (whose rows are `rows`, `lines` their JSON), yielding the batches whose results are done."""
        if self.pool is None:
            yield batch, self.screen(rows)
            return
        self.pending.append((batch, self.pool.apply_async(_work, (b"[" + b",".join(lines) + b"]",))))
        while len(self.pending) > 2 * self.workers:
            yield self.drain_one()

    def drain_one(self) -> tuple[Any, Screened]:
        batch, result = self.pending.popleft()
        return batch, result.get()

    def finish(self) -> Iterator[tuple[Any, Screened]]:
        while self.pending:
            yield self.drain_one()

    def close(self) -> None:
        global _screen
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        _screen = None

    def __enter__(self) -> Screening:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
