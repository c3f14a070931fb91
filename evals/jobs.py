"""Run one eval job on a saved checkpoint: load it with lm-eval's own model class (hf or vllm), score,
write the epoch report. `run_in_subprocess` gives each job a fresh process so GPU memory is freed and
a crash (OOM, bad checkpoint) becomes a recorded failure instead of taking training or the watcher down.
"""

from __future__ import annotations

import codecs
import collections
import io
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from evals import report
from evals.runner import failure, score
from evals.spec import EvalJob

LOG = logging.getLogger(__name__)


def load_lm(job: EvalJob):
    """lm-eval's LM for the job's backend, as `lm_eval --model B --model_args ...` would build it."""
    from lm_eval.api.registry import get_model

    args = dict(job.model_args)
    if job.settings.backend == "hf" and "device" not in args:
        import torch

        args["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return get_model(job.settings.backend).create_from_arg_obj(args, {"batch_size": job.settings.batch_size})


def _write(job: EvalJob, tasks: dict, started: float) -> Path:
    return report.write(
        job.output_dir,
        report.build(
            epoch=job.epoch,
            global_step=job.global_step,
            checkpoint=job.checkpoint,
            mode=job.mode,
            settings=job.settings,
            tasks=tasks,
            started=started,
            model_args=job.model_args,
        ),
    )


def run_job(job: EvalJob) -> Path:
    """Score the job's checkpoint and write its report; a model that fails to load fails every task."""
    started = time.time()
    try:
        lm = load_lm(job)
    except Exception as exc:
        LOG.error("epoch_eval: loading %s failed: %s", job.checkpoint, exc)
        tasks = {spec.name: failure(spec, exc) for spec in job.settings.tasks}
    else:
        tasks = score(lm, job.settings)
    return _write(job, tasks, started)


def run_in_subprocess(job_path: Path) -> dict:
    """`evals run JOB` in a child process, its progress passed through; returns the report (a failed
    one, with the child's last output, if the child died before writing it)."""
    job = EvalJob.load(job_path)
    path = report.report_path(job.output_dir, job.epoch)
    path.unlink(missing_ok=True)  # a report left by an earlier attempt must not pass for this one
    started = time.time()
    tail: collections.deque[str] = collections.deque(maxlen=64)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with subprocess.Popen([sys.executable, "-m", "evals.cli", "run", str(job_path)], stderr=subprocess.PIPE) as proc:
        stderr = cast(io.BufferedReader, proc.stderr)  # piped above
        for chunk in iter(lambda: stderr.read1(65536), b""):
            text = decoder.decode(chunk)
            sys.stderr.write(text)
            sys.stderr.flush()
            tail.append(text)
    if proc.returncode == 0 and path.is_file():
        return report.read(path)
    output = "".join(tail)[-3000:]
    error = RuntimeError(f"`evals run {job_path}` exited with {proc.returncode} without a report: {output}")
    _write(job, {spec.name: failure(spec, error) for spec in job.settings.tasks}, started)
    return report.read(path)
