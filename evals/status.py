"""Where every epoch's eval stands, whatever the mode: queued, running, done or failed, with the
scheduler's state, job id, log and checkpoint; and `unscored`: an epoch training recorded (eval_reports/
training.json) that has no report and no job (training was killed between its save and its eval, or during a
same_node eval): resuming the training scores it first. `held_checkpoints` is what the plugin keeps out of the
Trainer's checkpoint rotation: checkpoints whose eval is not finished (queued, running, or to be
resubmitted)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evals import queue, report, slurm, training
from evals.errors import EvalsError
from evals.jobs import JOBS_DIR
from evals.spec import EvalJob

UNSCORED_HINT = "no report, no job: resume training (auto_resume_from_checkpoints) to score it"


@dataclass
class EpochStatus:
    epoch: int
    state: str  # queued | running | done | failed | unscored
    checkpoint: str = "-"
    scheduler: str = "-"  # Slurm JobState (+ reason), or the queue worker
    job_id: str = "-"
    log: str = "-"
    attempts: int = 0
    report: str = "-"  # the report's status: ok | partial | failed

    @property
    def held(self) -> bool:
        return self.state in ("queued", "running")


def _report_status(output_dir: Path, epoch: int) -> str:
    path = report.report_path(output_dir, epoch)
    if not path.is_file():
        return "-"
    try:
        return report.read(path)["status"]
    except EvalsError:
        return "unreadable"


def _slurm_rows(output_dir: Path, query: bool) -> list[EpochStatus]:
    rows = []
    for _, job in slurm.slurm_jobs(output_dir):
        last = job.submissions[-1] if job.submissions else None
        job_state, reason = slurm.state(last.job_id) if (last and query) else ("-", "")
        done = _report_status(output_dir, job.epoch)  # read after the state: a job writes it before it ends
        if done != "-":
            state = "done" if done == "ok" else "failed"
        elif job_state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "CONFIGURING") or last is None:
            state = "queued"
        else:
            state = "running"  # running, or ended without a report: resubmitted or failed by reconcile
        rows.append(
            EpochStatus(
                epoch=job.epoch,
                state=state,
                checkpoint=job.checkpoint,
                scheduler=f"sbatch refused {len(job.refusals)}x"
                if job.refusals
                else f"{job_state} {reason}".strip()
                if reason and reason != "None"
                else job_state,
                job_id=last.job_id if last else "-",
                log=last.log if last else "-",
                attempts=len(job.submissions),
                report=done,
            )
        )
    return rows


def _queue_rows(output_dir: Path) -> list[EpochStatus]:
    rows = []
    for state_dir, state in (("pending", "queued"), ("running", "running"), ("done", "done"), ("failed", "failed")):
        for path in sorted(queue.queue_dir(output_dir, state_dir).glob("epoch_*.json")):
            match = (queue.RUNNING if state_dir == "running" else queue.PENDING).match(path.name)
            if match is None:
                continue
            epoch = int(match.group(1))
            try:
                checkpoint = EvalJob.load(path).checkpoint
            except EvalsError:
                checkpoint = "(malformed job)"
            worker = match.group(2) if state_dir == "running" else "-"
            rows.append(
                EpochStatus(
                    epoch=epoch,
                    state=state,
                    checkpoint=checkpoint,
                    scheduler=f"queue worker {worker}" if worker != "-" else "file queue",
                    report=_report_status(output_dir, epoch),
                )
            )
    return rows


def _report_rows(output_dir: Path, known: set[int]) -> list[EpochStatus]:
    """Epochs scored in the training process (same_node), or failed for good: only their reports."""
    rows = []
    for path in sorted(Path(output_dir, report.REPORTS_DIR).glob("epoch_*.json")):
        match = report.NAME.match(path.name)
        if match is None or int(match.group(1)) in known:
            continue
        status = _report_status(output_dir, int(match.group(1)))
        try:
            checkpoint = json.loads(path.read_bytes()).get("checkpoint", "-")
        except (OSError, ValueError):
            checkpoint = "-"
        rows.append(
            EpochStatus(
                epoch=int(match.group(1)),
                state="done" if status == "ok" else "failed",
                checkpoint=str(checkpoint),
                scheduler="in training",
                report=status,
            )
        )
    return rows


def epochs(output_dir: str | Path, *, query: bool = True) -> list[EpochStatus]:
    """Every epoch of a run that has a job or a report, by epoch. `query=False` skips the scheduler
    (held_checkpoints needs only the files)."""
    out = Path(output_dir)
    if not out.is_dir():
        raise EvalsError(f"{output_dir}: no such directory (expected a training run's output_dir)")
    rows = _slurm_rows(out, query) + _queue_rows(out)
    rows += _report_rows(out, {r.epoch for r in rows})
    rows += _unscored_rows(out, {r.epoch for r in rows})
    if not rows and not any(p.is_dir() for p in (out / JOBS_DIR, queue.queue_dir(out), out / report.REPORTS_DIR)):
        raise EvalsError(
            f"{output_dir}: not a training run with evals (no {JOBS_DIR}/, {queue.QUEUE_DIR}/ or "
            f"{report.REPORTS_DIR}/); check the path"
        )
    return sorted(rows, key=lambda r: r.epoch)


def _unscored_rows(output_dir: Path, known: set[int]) -> list[EpochStatus]:
    """Epochs training recorded that have neither a job nor a report."""
    record = training.load(output_dir)
    if record is None:
        return []
    rows = []
    for epoch in record.expected():
        if epoch in known:
            continue
        end = record.epochs.get(epoch)
        checkpoint = end.checkpoint if end else record.base_model
        rows.append(EpochStatus(epoch=epoch, state="unscored", checkpoint=checkpoint, scheduler=UNSCORED_HINT))
    return rows


def held_checkpoints(output_dir: str | Path) -> set[str]:
    """Checkpoints whose eval is not finished: keep them on disk."""
    return {str(Path(r.checkpoint).resolve()) for r in epochs(output_dir, query=False) if r.held and r.epoch > 0}
