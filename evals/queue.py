"""A file queue of eval jobs under `OUTPUT_DIR/eval_queue/` so a big run (70B, ZeRO-3) is never paused
for an eval: training only drops a job per checkpoint in `pending/`; `evals watch` on other GPUs or
nodes (same filesystem) claims jobs by an atomic rename to `running/` and files them under `done/` or
`failed/`. `TRAINING_DONE` tells watchers no more jobs will come."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from evals.jobs import run_in_subprocess
from evals.spec import EvalJob
from prep.io import write_json

LOG = logging.getLogger(__name__)
QUEUE_DIR = "eval_queue"
DONE_MARKER = "TRAINING_DONE"


def queue_dir(output_dir: str | Path, state: str = "") -> Path:
    return Path(output_dir) / QUEUE_DIR / state


def enqueue(job: EvalJob) -> Path:
    return job.save(queue_dir(job.output_dir, "pending") / f"epoch_{job.epoch}.json")


def mark_training_done(output_dir: str | Path) -> None:
    write_json(queue_dir(output_dir) / DONE_MARKER, {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _epoch_order(path: Path) -> int:
    return int(path.stem.removeprefix("epoch_"))


def claim(output_dir: str | Path) -> Path | None:
    """Move the earliest pending job to running/; None if there is none (another watcher may win a race)."""
    running = queue_dir(output_dir, "running")
    running.mkdir(parents=True, exist_ok=True)
    for path in sorted(queue_dir(output_dir, "pending").glob("epoch_*.json"), key=_epoch_order):
        target = running / path.name
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue
        return target
    return None


def run_claimed(path: Path) -> dict:
    """Run a claimed job and file it under done/ or failed/ (failed also when only some tasks failed)."""
    result = run_in_subprocess(path)
    state = "done" if result["status"] == "ok" else "failed"
    target = path.parent.parent / state / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    LOG.info("epoch_eval: epoch %s -> %s (%s)", result["epoch"], state, result["status"])
    return result


def watch(output_dir: str | Path, *, poll_s: float = 30.0, once: bool = False) -> list[dict]:
    """Run jobs as they appear; stop when training is done and nothing is pending (or, with `once`,
    when nothing is pending now). Returns the reports of the jobs this watcher ran."""
    ran = []
    while True:
        finished = (queue_dir(output_dir) / DONE_MARKER).is_file()  # read before claiming: no lost last job
        path = claim(output_dir)
        if path is not None:
            ran.append(run_claimed(path))
            continue
        if once or finished:
            return ran
        LOG.info("epoch_eval: waiting for jobs in %s", queue_dir(output_dir, "pending"))
        time.sleep(poll_s)
