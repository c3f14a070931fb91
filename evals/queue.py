"""A file queue of eval jobs under `OUTPUT_DIR/eval_queue/` so a big run (70B, ZeRO-3) is never paused
for an eval: training drops a job per checkpoint in `pending/`; `evals watch` on other GPUs or nodes
(same filesystem) claims one by an atomic rename to `running/epoch_<n>.<worker>.json` and files it under
`done/` or `failed/`. `TRAINING_DONE` tells watchers no more jobs will come.

Leases: the claimed file's mtime is its lease, renewed by the watcher every lease/4 seconds. A watcher
that finds a running job whose lease expired (its watcher was killed, its node died) renames it back to
`pending/`; only one rename wins, so one watcher re-claims it. A watcher that finds its own job gone
(it stalled past its lease) kills its eval and writes nothing: two watchers never both score a job. The
eval child dies with its watcher (prctl PDEATHSIG). `events.jsonl` logs every claim, expiry and filing.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import orjson

from evals.errors import EvalsError
from evals.jobs import run_in_subprocess
from evals.report import QUEUE_WORKER_ENV
from evals.spec import EvalJob
from prep.outputs import write_json

LOG = logging.getLogger(__name__)
QUEUE_DIR = "eval_queue"
DONE_MARKER = "TRAINING_DONE"
EVENTS = "events.jsonl"
PENDING = re.compile(r"^epoch_(\d+)\.json$")
RUNNING = re.compile(r"^epoch_(\d+)\.(.+)\.json$")
DEFAULT_LEASE_S = 300.0


def queue_dir(output_dir: str | Path, state: str = "") -> Path:
    return Path(output_dir) / QUEUE_DIR / state


def create(output_dir: str | Path) -> None:
    """Make OUTPUT_DIR a queue-mode run (the plugin does this when training starts)."""
    for state in ("pending", "running", "done", "failed"):
        queue_dir(output_dir, state).mkdir(parents=True, exist_ok=True)


def enqueue(job: EvalJob) -> Path:
    create(job.output_dir)
    return job.save(queue_dir(job.output_dir, "pending") / f"epoch_{job.epoch}.json")


def mark_training_done(output_dir: str | Path) -> None:
    write_json(queue_dir(output_dir) / DONE_MARKER, {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def log_event(output_dir: str | Path, event: str, epoch: int | None, **fields: object) -> None:
    """One JSON line, appended with a single write (O_APPEND): watchers on one filesystem share the log."""
    line = orjson.dumps({"time": round(time.time(), 3), "event": event, "epoch": epoch, **fields}) + b"\n"
    fd = os.open(queue_dir(output_dir) / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def file_failed(output_dir: str | Path, path: Path, reason: str, epoch: int | None) -> Path:
    """Move a job that cannot run under failed/ (as epoch_<n>.json), its reason beside it (`.reason.txt`)."""
    target = queue_dir(output_dir, "failed") / (path.name if epoch is None else f"epoch_{epoch}.json")
    os.replace(path, target)
    (target.parent / f"{target.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    log_event(output_dir, "failed", epoch, reason=reason)
    LOG.error("epoch_eval: %s filed under failed/: %s", path.name, reason)
    return target


def reclaim_expired(output_dir: str | Path, lease_s: float) -> list[int]:
    """Running jobs whose lease expired go back to pending/; returns their epochs."""
    back = []
    for path in queue_dir(output_dir, "running").glob("epoch_*.json"):
        match = RUNNING.match(path.name)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if match is None or age <= lease_s:
            continue
        epoch = int(match.group(1))
        try:
            os.rename(path, queue_dir(output_dir, "pending") / f"epoch_{epoch}.json")
        except FileNotFoundError:
            continue  # another watcher reclaimed it first
        log_event(output_dir, "expired", epoch, worker=match.group(2), lease_age_s=round(age, 1))
        LOG.warning("epoch_eval: epoch %d: lease of %s expired %.0f s ago; back to pending", epoch, match.group(2), age)
        back.append(epoch)
    return back


def claim(output_dir: str | Path, worker: str) -> Path | None:
    """Move the earliest pending job to running/ under this worker's name; None if there is none. A file
    in pending/ that is not named epoch_<n>.json is filed under failed/ with the reason."""
    candidates = []
    for path in queue_dir(output_dir, "pending").iterdir():
        match = PENDING.match(path.name)
        if match is None:
            if not path.name.startswith("."):  # atomic writes' temp files
                file_failed(output_dir, path, f"{path.name}: not an eval job name (epoch_<n>.json)", None)
            continue
        candidates.append((int(match.group(1)), path))
    for epoch, path in sorted(candidates):
        target = queue_dir(output_dir, "running") / f"epoch_{epoch}.{worker}.json"
        try:
            os.rename(path, target)
            os.utime(target)  # the lease starts now (rename kept the enqueue time)
        except FileNotFoundError:
            continue  # another watcher won it, or reclaimed it before the lease was set
        log_event(output_dir, "claimed", epoch, worker=worker)
        return target
    return None


class Lease:
    """Renews a claimed job's lease (its mtime) from a thread; when the file is gone, the job was
    reclaimed by another watcher: stop the eval child and remember it was lost."""

    def __init__(self, path: Path, lease_s: float) -> None:
        self.path, self.interval = path, lease_s / 4
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._child: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._renew, daemon=True)

    def start(self, child: subprocess.Popen) -> None:
        self._child = child
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.lost.set()
                if self._child is not None:
                    self._child.kill()
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_claimed(output_dir: str | Path, path: Path, worker: str, lease_s: float) -> dict | None:
    """Run a claimed job and file it under done/ or failed/ (failed also when only some tasks failed).
    A malformed job goes to failed/ with its reason. None if the lease was lost meanwhile."""
    epoch = int(RUNNING.match(path.name).group(1))  # type: ignore[union-attr]  # claim() named it
    try:
        job = EvalJob.load(path)
    except EvalsError as exc:
        file_failed(output_dir, path, str(exc), epoch)
        return None
    if job.epoch != epoch or Path(job.output_dir).resolve() != Path(output_dir).resolve():
        reason = f"{path.name}: job for epoch {job.epoch} of {job.output_dir}, queued in {Path(output_dir).resolve()}"
        file_failed(output_dir, path, reason, epoch)
        return None
    lease = Lease(path, lease_s)
    try:
        result = run_in_subprocess(
            path, env={QUEUE_WORKER_ENV: worker}, started_child=lease.start, abandoned=lease.lost.is_set
        )
    finally:
        lease.stop()
    if result is None:
        log_event(output_dir, "lost", epoch, worker=worker)
        LOG.warning("epoch_eval: epoch %d was reclaimed by another watcher (lease lost); not filed", epoch)
        return None
    state = "done" if result["status"] == "ok" else "failed"
    try:
        os.rename(path, queue_dir(output_dir, state) / f"epoch_{epoch}.json")
    except FileNotFoundError:
        log_event(output_dir, "lost", epoch, worker=worker)
        return None
    log_event(output_dir, state, epoch, worker=worker, status=result["status"])
    LOG.info("epoch_eval: epoch %s -> %s (%s)", epoch, state, result["status"])
    return result


def check_run(output_dir: str | Path) -> None:
    if not queue_dir(output_dir).is_dir():
        raise EvalsError(
            f"{output_dir}: not a queue-mode training run (no {QUEUE_DIR}/ inside); check the path: "
            "training with epoch_eval.mode: queue creates it when it starts"
        )


def watch(
    output_dir: str | Path, *, poll_s: float = 30.0, once: bool = False, lease_s: float = DEFAULT_LEASE_S
) -> list[dict]:
    """Run jobs as they appear; stop when training is done and nothing is pending or running (or, with
    `once`, when nothing is pending now). Returns the reports of the jobs this watcher ran."""
    check_run(output_dir)
    create(output_dir)
    worker = worker_id()
    ran = []
    while True:
        finished = (queue_dir(output_dir) / DONE_MARKER).is_file()  # read before claiming: no lost last job
        reclaim_expired(output_dir, lease_s)
        path = claim(output_dir, worker)
        if path is not None:
            result = run_claimed(output_dir, path, worker, lease_s)
            if result is not None:
                ran.append(result)
            continue
        if once or (finished and not any(queue_dir(output_dir, "running").glob("epoch_*.json"))):
            return ran
        LOG.info("epoch_eval: waiting for jobs in %s", queue_dir(output_dir, "pending"))
        time.sleep(poll_s)
