"""`epoch_eval.mode: slurm`: one `sbatch` job per checkpoint runs `evals run JOB` on the cluster.

The job file is `OUTPUT_DIR/eval_jobs/epoch_<n>.json` (evals.jobs.job_path); beside it the batch script (`.sbatch`) and, per
submission, the log `eval_jobs/logs/epoch_<n>-<jobid>.log`. Every submission's job id is appended to the
job file; the report records the id of the job that wrote it (SLURM_JOB_ID).

States come from `scontrol show job` (`sacct` needs slurmdbd, which small clusters lack; scontrol keeps
a finished job for MinJobAge seconds, after which it says UNKNOWN here). A job that ended without
writing its report (failed, preempted, timed out, node failure, cancelled, or forgotten by scontrol) is
resubmitted up to `max_resubmits` times, then recorded as a failed report with the scheduler's state and
the log's tail, so the epoch is scored or failed for good, never silently missing. An `sbatch` that fails
(the controller restarting or failing over, which takes minutes) does not stop training: it is recorded in
the job file and retried at every `reconcile` until its refusals span SBATCH_PATIENCE_S, then the epoch
gets a failed report naming sbatch's error.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from evals import report
from evals.environment import child_environment
from evals.errors import EvalsError
from evals.jobs import JOBS_DIR, failed_report
from evals.spec import EvalJob, SbatchRefusal, SlurmSettings, Submission
from prep.outputs import atomic_output

LOG = logging.getLogger(__name__)
# scontrol's states of a job that may still write its report
ACTIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
    "RESV_DEL_HOLD",
    "SPECIAL_EXIT",
}
UNKNOWN = "UNKNOWN"
SBATCH_PATIENCE_S = 1800.0  # a refused sbatch is retried until its refusals span this long


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EvalsError(
            f"`{name}` not found on PATH: epoch_eval.mode slurm needs the Slurm client tools where training "
            "runs (apt-get install slurm-client, or use mode: queue with `evals watch`)"
        )
    return path


def batch_script(s: SlurmSettings, *, name: str, log: Path, command: str) -> str:
    """The template: #SBATCH lines from the `slurm:` keys, the setup line, then `command`."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --output={log}",
        *([f"#SBATCH --partition={s.partition}"] if s.partition else []),
        *([f"#SBATCH --account={s.account}"] if s.account else []),
        *([f"#SBATCH --time={s.time}"] if s.time else []),
        *([f"#SBATCH --gpus={s.gpus}"] if s.gpus else []),
        *([f"#SBATCH --cpus-per-task={s.cpus_per_task}"] if s.cpus_per_task else []),
        *([f"#SBATCH --mem={s.mem}"] if s.mem else []),
        *(f"#SBATCH {line}" for line in s.extra_sbatch),
        "set -euo pipefail",
        *([s.setup] if s.setup else []),
        command,
    ]
    return "\n".join(lines) + "\n"


def script(job: EvalJob, path: Path) -> str:
    """The batch script of a job file: `evals run JOB` under the job's template."""
    if job.slurm is None:
        raise EvalsError(f"{path}: not a slurm job (no slurm settings)")
    evals = job.slurm.command or shlex.join([sys.executable, "-m", "evals.cli"])
    return batch_script(
        job.slurm,
        name=f"eval-{Path(job.output_dir).name}-epoch{job.epoch}",
        log=path.parent / "logs" / f"{path.stem}-%j.log",
        command=f"exec {evals} run {shlex.quote(str(path))}",
    )


def check_template(s: SlurmSettings, workdir: Path) -> None:
    """`sbatch --test-only` of the template (nothing is submitted): a wrong partition, account or GPU
    request is refused before training starts, not at the first epoch's end."""
    _tool("scontrol")
    workdir.mkdir(parents=True, exist_ok=True)
    test = workdir / ".epoch_eval-template-check.sbatch"
    test.write_text(batch_script(s, name="eval-template-check", log=Path("/dev/null"), command="true"))
    try:
        run = subprocess.run([_tool("sbatch"), "--test-only", str(test)], capture_output=True, text=True)
    finally:
        test.unlink(missing_ok=True)
    if run.returncode != 0:
        raise EvalsError(f"epoch_eval.slurm: sbatch refuses the eval job template: {run.stderr.strip()}")


def submit(path: Path) -> Submission:
    """sbatch the job file's script (a stale report of an earlier attempt removed first) and append the
    submission to the job file."""
    job = EvalJob.load(path)
    sbatch_file = path.with_suffix(".sbatch")
    with atomic_output(sbatch_file) as f:
        f.write(script(job, path).encode())
    (path.parent / "logs").mkdir(exist_ok=True)
    report.report_path(job.output_dir, job.epoch).unlink(missing_ok=True)
    # sbatch hands its own environment to the job: the training rank's launcher variables would make the job's
    # lm-eval join the training's process group (and hang), its W&B service variable the training's open run
    run = subprocess.run(
        [_tool("sbatch"), "--parsable", str(sbatch_file)],
        capture_output=True,
        text=True,
        env=child_environment(os.environ),
    )
    if run.returncode != 0:
        error = f"sbatch {sbatch_file} failed (exit {run.returncode}): {' '.join(run.stderr.split())}"
        refusal = SbatchRefusal(at=time.time(), error=error)
        job.model_copy(update={"refusals": [*job.refusals, refusal]}).save(path)
        raise EvalsError(error)
    job_id = run.stdout.strip().split(";")[0]
    sub = Submission(
        job_id=job_id,
        log=str(path.parent / "logs" / f"{path.stem}-{job_id}.log"),
        submitted_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    job.model_copy(update={"submissions": [*job.submissions, sub], "refusals": []}).save(path)
    LOG.info("epoch_eval: epoch %d submitted as slurm job %s (log %s)", job.epoch, job_id, sub.log)
    return sub


def state(job_id: str) -> tuple[str, str]:
    """(JobState, Reason) from `scontrol show job`; UNKNOWN once scontrol no longer knows the job."""
    run = subprocess.run([_tool("scontrol"), "-o", "show", "job", job_id], capture_output=True, text=True)
    found = re.search(r"\bJobState=(\S+)", run.stdout)
    if run.returncode != 0 or found is None:
        return UNKNOWN, run.stderr.strip()
    reason = re.search(r"\bReason=(\S+)", run.stdout)
    return found.group(1), reason.group(1) if reason else ""


def slurm_jobs(output_dir: str | Path) -> list[tuple[Path, EvalJob]]:
    out = []
    for path in sorted(Path(output_dir, JOBS_DIR).glob("epoch_*.json")):
        job = EvalJob.load(path)
        if job.mode == "slurm":
            out.append((path, job))
    return sorted(out, key=lambda pj: pj[1].epoch)


def _tail(log: str, chars: int = 2000) -> str:
    try:
        return Path(log).read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def reconcile(output_dir: str | Path) -> None:
    """Resubmit every job that ended without its report, up to its max_resubmits, and every job sbatch refused
    (for SBATCH_PATIENCE_S); past that, write the epoch's failed report. Called by the plugin while it waits
    and by `evals status --resubmit`."""
    for path, job in slurm_jobs(output_dir):
        if job.slurm is None or report.report_path(job.output_dir, job.epoch).is_file():
            continue
        if job.refusals:
            _submit_again(path, job)
            continue
        if not job.submissions:
            continue
        last = job.submissions[-1]
        job_state, reason = state(last.job_id)
        if job_state in ACTIVE or report.report_path(job.output_dir, job.epoch).is_file():
            continue  # the report is checked after the state: a job writes it before it ends
        tries = len(job.submissions)
        if tries <= job.slurm.max_resubmits:
            LOG.warning(
                "epoch_eval: epoch %d: slurm job %s ended %s (%s) without a report; resubmitting (%d of %d)",
                job.epoch,
                last.job_id,
                job_state,
                reason,
                tries,
                job.slurm.max_resubmits,
            )
            try:
                submit(path)
            except EvalsError as exc:
                LOG.warning("epoch_eval: epoch %d: %s; retried at the next look", job.epoch, exc)
            continue
        ids = ", ".join(s.job_id for s in job.submissions)
        error = RuntimeError(
            f"slurm job(s) {ids} ended without a report (last: {job_state} {reason}) after {tries} "
            f"submission(s); log {last.log}: {_tail(last.log)}"
        )
        LOG.error("epoch_eval: epoch %d failed for good: %s", job.epoch, error)
        failed_report(job, error, time.time(), where={"name": "slurm", "job_id": last.job_id})


def _submit_again(path: Path, job: EvalJob) -> None:
    """sbatch refused the job's last submission: try again until its refusals span SBATCH_PATIENCE_S (they
    count, not the time since the first: reconcile may not run for an epoch), then write the epoch's failed
    report with sbatch's error."""
    span = job.refusals[-1].at - job.refusals[0].at
    if span < SBATCH_PATIENCE_S:
        try:
            submit(path)
            LOG.info("epoch_eval: epoch %d: sbatch accepted the job after %d refusal(s)", job.epoch, len(job.refusals))
        except EvalsError as exc:
            LOG.warning("epoch_eval: epoch %d: %s; retried at the next look", job.epoch, exc)
        return
    error = RuntimeError(
        f"sbatch refused the job {len(job.refusals)} time(s) over {span:.0f}s; last: {job.refusals[-1].error}"
    )
    LOG.error("epoch_eval: epoch %d failed for good: %s", job.epoch, error)
    failed_report(job, error, time.time(), where={"name": "slurm", "job_id": "-"})
