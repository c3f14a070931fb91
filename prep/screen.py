"""The per-row work of `prep build` on a batch of rows: the row filters, then what each corpus step and
statistic keeps of the surviving rows (dedup keys, LSH band hashes, lengths). It is pure, so batches can run in worker
processes while the main process reads sources and keeps the ledger and the spill; results come back in
submission order, so the output does not depend on the number of workers."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from prep.errors import PrepError
from prep.rows import Row
from prep.signals import worker_signals
from prep.step import RowFilter, Verdict


class Featurizer(Protocol):
    def featurize(self, rows: list[Row]) -> Any: ...


@dataclass
class Screened:
    drops: list[tuple[int, Verdict] | None]  # per row: which filter dropped it (its position) and why, or None
    features: list[Any]  # per corpus step, for the surviving rows in order


class Screen:
    def __init__(self, filters: list[RowFilter], steps: Sequence[Featurizer]) -> None:
        self.checks = [f.check for f in filters]
        self.steps = steps

    def __call__(self, rows: list[Row]) -> Screened:
        drops = [self.drop(row) for row in rows]
        kept = [row for row, drop in zip(rows, drops, strict=True) if drop is None]
        return Screened(drops, [step.featurize(kept) for step in self.steps])

    def drop(self, row: Row) -> tuple[int, Verdict] | None:
        """The first filter that drops `row` (its position) and its verdict, or None."""
        for position, check in enumerate(self.checks):
            verdict = check(row)
            if verdict is not None:
                return position, verdict
        return None


def default_workers() -> int:
    """One worker per usable core; none (work in the main process) on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores if cores > 1 else 0


POLL_S = 0.5  # how often a wait for a batch checks that the workers live
GRACE_S = 3.0  # what a worker gets at close to finish the batch it holds, before it is killed
_screen: Screen | None = None  # set once per worker by the pool's initializer


def _init_worker(screen: Screen) -> None:
    """Runs in each forked worker: `screen` arrives by fork (the loaded models and indexes are not pickled)."""
    global _screen
    worker_signals()
    _screen = screen


def _work(payload: bytes) -> Screened:
    assert _screen is not None
    return _screen([Row(**r) for r in orjson.loads(payload)])


class Screening:
    """Screens batches in `workers` forked processes, at most two batches per worker in flight so memory stays
    bounded; `workers=0` screens in the calling process. A worker that dies (the OOM killer's SIGKILL) fails
    the build at once with a PrepError, where multiprocessing.Pool would wait for its batch forever."""

    def __init__(self, screen: Screen, workers: int) -> None:
        self.screen = screen
        self.workers = workers
        self.pending: deque[tuple[Any, Future[Screened]]] = deque()
        self.pool: ProcessPoolExecutor | None = None
        if workers:
            context = multiprocessing.get_context("fork")
            self.pool = ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=(screen,))

    def submit(self, batch: Any, rows: list[Row], lines: list[bytes]) -> Iterator[tuple[Any, Screened]]:
        """Queue `batch` (whose rows are `rows`, `lines` their JSON), yielding the batches whose results are done."""
        if self.pool is None:
            yield batch, self.screen(rows)
            return
        try:
            future = self.pool.submit(_work, b"[" + b",".join(lines) + b"]")
        except BrokenProcessPool as e:
            raise self._died() from e
        self.pending.append((batch, future))
        while len(self.pending) > 2 * self.workers:
            yield self.drain_one()

    def drain_one(self) -> tuple[Any, Screened]:
        batch, future = self.pending.popleft()
        while True:
            try:
                return batch, future.result(timeout=POLL_S)
            except BrokenProcessPool as e:
                raise self._died() from e
            except TimeoutError:
                # the executor notices a dead worker itself, except one killed while sending its result:
                # its manager thread then waits for the rest of the message forever, so look ourselves
                if any(p.exitcode is not None for p in self._processes()):
                    raise self._died() from None

    def _processes(self) -> list[multiprocessing.process.BaseProcess]:
        return list((self.pool._processes or {}).values()) if self.pool is not None else []  # no public API

    def _died(self) -> PrepError:
        return PrepError(
            "a screening worker died (killed by a signal: out of memory?); nothing was written. "
            "Rerun with fewer --workers, or --workers 0"
        )

    def finish(self) -> Iterator[tuple[Any, Screened]]:
        while self.pending:
            yield self.drain_one()

    def close(self) -> None:
        """Stops the workers: queued batches are cancelled, the ones a worker holds may finish for GRACE_S, then
        it is killed. A worker killed while sending its result leaves the executor's manager thread reading the
        rest of that message forever, and the interpreter joins that thread at exit: once every worker is gone,
        closing our end of the results pipe ends the read (EOF), so a library caller exits too."""
        if self.pool is not None:
            processes = self._processes()
            internals: Any = self.pool  # no public API for its manager thread and results pipe
            manager, results = internals._executor_manager_thread, internals._result_queue
            self.pool.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + GRACE_S
            for p in processes:
                p.join(max(0.0, deadline - time.monotonic()))
            for p in processes:
                if p.exitcode is None:
                    p.kill()
                    p.join()
            if manager is not None:
                manager.join(POLL_S)
                if manager.is_alive():
                    results._writer.close()
                    manager.join(GRACE_S)
            self.pool = None

    def __enter__(self) -> Screening:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
