"""Rank 0 works (an eval, a wait for evals elsewhere) while every other rank waits on a file, never inside a
collective: a collective that outlasts `ddp_timeout` (NCCL's watchdog) kills the job, and an eval of a 70B can
take hours. When rank 0 is done it writes a verdict file; each other rank reads it, and all meet at a barrier
that then returns at once. A rank 0 that fails writes the failure as its verdict, so every rank stops with the
same error instead of hanging; a rank 0 that dies (on the same host) is noticed by its pid.

Markers live in OUTPUT_DIR/eval_reports/.ranks/<token>.<what>.json; the token is drawn by rank 0 when training
starts and broadcast once, so a marker from an earlier (killed) launch is never taken for this one's.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from evals.report import REPORTS_DIR
from prep.outputs import write_json

LOG = logging.getLogger(__name__)
MARKERS = ".ranks"
T = TypeVar("T")


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def elapsed(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.1f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


class RankZeroFailed(SystemExit):
    """Rank 0's work failed (or rank 0 died); every other rank ends with rank 0's message, in one line."""


class Ranks:
    def __init__(self, output_dir: str | Path, remind_s: float) -> None:
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.remind_s = remind_s
        self.dir = Path(output_dir) / REPORTS_DIR / MARKERS
        self.token = "single"
        self.leader: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def talks(self) -> bool:
        """One waiting rank per host says what it waits for (not every rank of the node)."""
        return (self.rank == 1) or (self.local_rank == 0 and self.rank != 0)

    def start(self) -> None:
        """Every rank, when training starts: learn this launch's token and rank 0's host and pid (one short
        broadcast)."""
        if self.main and self.dir.is_dir():
            shutil.rmtree(self.dir, ignore_errors=True)  # markers of a launch that was killed
        if self.world <= 1:
            return
        import torch.distributed as dist

        payload = [{"token": uuid.uuid4().hex, **self.leader} if self.main else None]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast_object_list(payload, src=0)
        if payload[0] is not None:
            self.token = str(payload[0]["token"])
            self.leader = {"host": payload[0]["host"], "pid": payload[0]["pid"]}

    def _marker(self, what: str) -> Path:
        return self.dir / f"{self.token}.{what}.json"

    def rank0_does(self, what: str, describe: str, work: Callable[[], T]) -> T | None:
        """Rank 0 runs `work` (its result is returned there; None elsewhere); the others wait for its verdict
        on a file, saying every remind_s what they wait for. Then all ranks meet at a barrier."""
        if self.world <= 1:
            return work()
        result: T | None = None
        marker = self._marker(what)
        if self.main:
            try:
                result = work()
            except BaseException as exc:
                error = str(exc) if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
                write_json(marker, {"ok": False, "error": error})
                raise
            write_json(marker, {"ok": True})
        else:
            verdict = self._wait(marker, describe)
            if not verdict["ok"]:
                raise RankZeroFailed(f"epoch_eval: rank 0 failed while {describe}: {verdict['error']}")
        barrier()
        if self.main:
            marker.unlink(missing_ok=True)
        return result

    def _wait(self, marker: Path, describe: str) -> dict:
        began = last = time.monotonic()
        if self.talks:
            LOG.info("epoch_eval: rank %d waits (on a file, not a collective) while rank 0 is %s", self.rank, describe)
        same_host = self.leader["host"] == socket.gethostname()
        while True:
            try:
                return orjson.loads(marker.read_bytes())
            except FileNotFoundError:
                pass
            except orjson.JSONDecodeError:
                pass  # written atomically; only a foreign file could be half-written
            if same_host and not _alive(int(self.leader["pid"])):
                raise RankZeroFailed(
                    f"epoch_eval: rank 0 (pid {self.leader['pid']}) ended while {describe}; rank {self.rank} stops"
                )
            now = time.monotonic()
            if self.talks and now - last >= self.remind_s:
                LOG.info("epoch_eval: rank %d still waits while rank 0 is %s (%s so far)", self.rank, describe,
                         elapsed(now - began))  # fmt: skip
                last = now
            time.sleep(min(1.0, self.remind_s / 10))

    def finish(self) -> None:
        """Rank 0 at the end of training: this launch's markers are all read (each was followed by a barrier)."""
        if self.main and self.dir.is_dir():
            for path in self.dir.glob(f"{self.token}.*.json"):
                path.unlink(missing_ok=True)
            if not any(self.dir.iterdir()):
                shutil.rmtree(self.dir, ignore_errors=True)
