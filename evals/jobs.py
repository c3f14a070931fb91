"""Run one eval job on a saved checkpoint: load it with lm-eval's own model class (hf or vllm), score,
write the epoch report, log the scores to the training's trackers (queue and slurm jobs carry them).
`run_in_subprocess` gives each job a fresh process so GPU memory is freed and a crash (OOM, bad checkpoint)
becomes a recorded failure instead of taking training or the watcher down. The child gets a clean environment:
none of the launcher's distributed variables, or lm-eval's Accelerator would join the training's process group.

Job files: `OUTPUT_DIR/eval_jobs/epoch_<n>.json` for the jobs the training process runs or submits itself
(same_node's checkpoint evals, slurm), `OUTPUT_DIR/eval_queue/<state>/` for queue mode (evals/queue.py).
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from evals import report
from evals.environment import child_environment
from evals.runner import failure, score
from evals.spec import EvalJob
from evals.trackers import log_scores

LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_ENV = "EVALS_PARENT_PID"
JOBS_DIR = "eval_jobs"


def job_path(output_dir: str | Path, epoch: int) -> Path:
    return Path(output_dir) / JOBS_DIR / f"epoch_{epoch}.json"


def load_lm(job: EvalJob):
    """lm-eval's LM for the job's backend, as `lm_eval --model B --model_args ...` would build it."""
    from lm_eval.api.registry import get_model

    args = dict(job.model_args)
    if job.settings.backend == "hf" and "device" not in args:
        import torch

        args["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return get_model(job.settings.backend).create_from_arg_obj(args, {"batch_size": job.settings.batch_size})


def write_report(
    job: EvalJob, tasks: dict, started: float, where: dict[str, str] | None = None, dtype: str | None = None
) -> Path:
    return report.write(
        job.output_dir,
        report.build(
            output_dir=job.output_dir,
            epoch=job.epoch,
            global_step=job.global_step,
            checkpoint=job.checkpoint,
            mode=job.mode,
            settings=job.settings,
            tasks=tasks,
            started=started,
            dtype=dtype or str(job.model_args.get("dtype", "auto")),
            model_args=job.model_args,
            where=where,
        ),
    )


def loaded_dtype(lm) -> str | None:
    """The dtype the weights were loaded in (hf: the model's; vllm: what the engine was given)."""
    model = getattr(lm, "_model", None)
    if model is not None and hasattr(model, "dtype"):
        return str(model.dtype).removeprefix("torch.")
    return getattr(lm, "model_args", {}).get("dtype")


def failed_report(job: EvalJob, error: BaseException, started: float, where: dict[str, str] | None = None) -> Path:
    """Every task failed with one error: the model did not load, or the job died before its report."""
    return write_report(job, {spec.name: failure(spec, error) for spec in job.settings.tasks}, started, where)


def run_job(job: EvalJob) -> Path:
    """Score the job's checkpoint, write its report and log it to the job's trackers; a model that fails to
    load fails every task."""
    started = time.time()
    try:
        lm = load_lm(job)
    except Exception as exc:
        LOG.error("epoch_eval: loading %s failed: %s", job.checkpoint, exc)
        path = failed_report(job, exc, started)
    else:
        path = write_report(job, score(lm, job.settings), started, dtype=loaded_dtype(lm))
    where = report.scheduler()
    log_scores(job.trackers, report.read(path), label=f"evals-{job.mode}-{_where(where)}")
    return path


def _where(scheduler: dict[str, str] | None) -> str:
    return (scheduler or {}).get("job_id") or (scheduler or {}).get("worker") or str(os.getpid())


def die_with_parent() -> None:
    """Called first in `evals run` when a parent set PARENT_ENV: SIGKILL this process when that parent
    dies (Linux prctl), so a killed watcher leaves no eval running that another watcher then runs again."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):  # the parent died before the prctl
        os._exit(1)


def run_in_subprocess(
    job_path: Path,
    *,
    env: dict[str, str] | None = None,
    started_child: Callable[[subprocess.Popen], None] | None = None,
    abandoned: Callable[[], bool] = lambda: False,
) -> dict | None:
    """`evals run JOB` in a child process, its progress passed through; returns the report (a failed
    one, with the child's last output, if the child died before writing it), or None when `abandoned()`
    says the job was taken away meanwhile (a lost queue lease: someone else runs it, write nothing)."""
    job = EvalJob.load(job_path)
    path = report.report_path(job.output_dir, job.epoch)
    path.unlink(missing_ok=True)  # a report left by an earlier attempt must not pass for this one
    started = time.time()
    tail: collections.deque[str] = collections.deque(maxlen=64)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with subprocess.Popen(
        [sys.executable, "-m", "evals.cli", "run", str(job_path)],
        stderr=subprocess.PIPE,
        env={**child_environment(os.environ), **(env or {}), PARENT_ENV: str(os.getpid())},
    ) as proc:
        if started_child is not None:
            started_child(proc)
        stderr = cast(io.BufferedReader, proc.stderr)  # piped above
        for chunk in iter(lambda: stderr.read1(65536), b""):
            text = decoder.decode(chunk)
            sys.stderr.write(text)
            sys.stderr.flush()
            tail.append(text)
    if abandoned():
        return None
    if proc.returncode == 0 and path.is_file():
        return report.read(path)
    output = "".join(tail)[-3000:]
    failed_report(
        job, RuntimeError(f"`evals run {job_path}` exited with {proc.returncode} without a report: {output}"), started
    )
    return report.read(path)
