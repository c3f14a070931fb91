"""The per-epoch report: `OUTPUT_DIR/eval_reports/epoch_<n>.json`, one file per evaluated checkpoint,
written atomically so `evals report` and a watcher never read half a file.

A report records what makes its numbers comparable: the harness and its version, per task the few-shot
count, metric and aggregation, no chat template, batch size, dtype, backend, row limits; and where it
ran (the Slurm job id or the queue worker)."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from evals.errors import EvalsError
from evals.spec import EvalSettings
from prep.outputs import write_json
from prep.paths import special_file

REPORTS_DIR = "eval_reports"
NAME = re.compile(r"^epoch_(\d+)\.json$")
# metrics that are fractions of rows: a value outside [0, 1] is not a score
FRACTION_METRICS = {"acc", "acc_norm", "exact_match", "mc1", "mc2", "f1", "em"}
QUEUE_WORKER_ENV = "EVALS_QUEUE_WORKER"


def report_path(output_dir: str | Path, epoch: int) -> Path:
    return Path(output_dir) / REPORTS_DIR / f"epoch_{epoch}.json"


def status_of(tasks: dict[str, dict[str, Any]]) -> str:
    states = {t["status"] for t in tasks.values()}
    return "ok" if states == {"ok"} else "failed" if states == {"failed"} else "partial"


def scheduler() -> dict[str, str] | None:
    """Where this eval runs: the Slurm job (its id is in the environment of every batch job) or the
    queue worker that claimed it."""
    if os.environ.get("SLURM_JOB_ID"):
        return {"name": "slurm", "job_id": os.environ["SLURM_JOB_ID"]}
    if os.environ.get(QUEUE_WORKER_ENV):
        return {"name": "queue", "worker": os.environ[QUEUE_WORKER_ENV]}
    return None


def build(
    *,
    output_dir: str | Path,
    epoch: int,
    global_step: int,
    checkpoint: str,
    mode: str,
    settings: EvalSettings,
    tasks: dict[str, dict[str, Any]],
    started: float,
    dtype: str,
    model_args: dict[str, Any] | None = None,
    where: dict[str, str] | None = None,
) -> dict:
    """`where`: the scheduler job or worker that ran it, when not this process's (default: scheduler())."""
    import lm_eval

    return {
        "output_dir": str(Path(output_dir).resolve()),
        "epoch": epoch,
        "global_step": global_step,
        "checkpoint": checkpoint,
        "mode": mode,
        "backend": settings.backend,
        "model_args": model_args or {},
        "limit": {t.name: t.limit or settings.limit for t in settings.tasks},
        "chat_template": False,
        "lm_eval_version": lm_eval.__version__,
        "harness": f"lm-eval {lm_eval.__version__}",
        "batch_size": settings.batch_size,
        "dtype": dtype,
        "scheduler": where or scheduler(),
        "status": status_of(tasks),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_time_s": round(time.time() - started, 3),
        "tasks": tasks,
    }


def write(output_dir: str | Path, report: dict) -> Path:
    path = report_path(output_dir, report["epoch"])
    write_json(path, report)
    return path


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_task(path: Path, name: str, task: Any) -> dict[str, Any]:
    """One task entry; a null, NaN or out-of-range score makes the task failed (with the reason), a
    missing key or a value of the wrong type is an error naming the file and the key."""
    key = f"tasks.{name}"
    if not isinstance(task, dict):
        raise EvalsError(f"{path}: key {key} is {type(task).__name__}, expected an object")
    for field in ("status", "metric"):
        if field not in task:
            raise EvalsError(f"{path}: key {key}.{field} is missing")
        if not isinstance(task[field], str):
            raise EvalsError(f"{path}: key {key}.{field} is {task[field]!r}, not a string")
    if task["status"] not in ("ok", "failed"):
        raise EvalsError(f"{path}: key {key}.status is {task['status']!r}, expected 'ok' or 'failed'")
    if task["status"] != "ok":
        return {**task, "error": str(task.get("error", "failed (no error recorded)"))}
    if "value" not in task:
        raise EvalsError(f"{path}: key {key}.value is missing")
    value, stderr = task["value"], task.get("stderr")
    for field, v in (("value", value), ("stderr", stderr)):
        if v is not None and not _number(v):
            raise EvalsError(f"{path}: key {key}.{field} is {v!r}, not a number")
    problem = None
    if value is None or not math.isfinite(value):
        problem = f"score is {value} (lm-eval produced no number)"
    elif task["metric"] in FRACTION_METRICS and not 0 <= value <= 1:
        problem = f"score {value} is outside [0, 1] for metric {task['metric']}"
    elif stderr is not None and (not math.isfinite(stderr) or stderr < 0):
        problem = f"stderr {stderr} is not a finite number >= 0"
    if problem:
        return {**task, "status": "failed", "error": f"invalid report: {problem}"}
    return task


def read(path: Path) -> dict:
    """One report, checked: what `evals report` may rank. A file that is not one is an EvalsError
    naming it and the key; a task with a null/NaN/out-of-range score comes back failed."""
    if (odd := special_file(path)) is not None or not path.is_file():
        raise EvalsError(f"{path}: {odd or 'a directory'}; remove it or re-run that epoch's eval")
    try:
        report = json.loads(path.read_bytes())  # the standard parser: a hand-written NaN is read, then failed
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalsError(f"{path}: not JSON ({exc}); remove it or re-run that epoch's eval") from exc
    if not isinstance(report, dict):
        raise EvalsError(f"{path}: not an epoch report (a JSON {type(report).__name__}, expected an object)")
    epoch = report.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise EvalsError(f"{path}: key epoch is {epoch!r}, expected a whole number >= 0")
    tasks = report.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise EvalsError(f"{path}: key tasks is missing or empty ({tasks!r})")
    checked = {name: _checked_task(path, name, t) for name, t in tasks.items()}
    return {**report, "tasks": checked, "status": status_of(checked)}


def identity(report: dict) -> dict[str, Any]:
    """What must be equal across one run's reports for their scores to be compared: the run (output
    directory), backend, harness version, row limits, batch size, dtype, chat template, and per task
    the metric and few-shot count. Older reports without `output_dir` give it by the checkpoint's parent."""
    run = report.get("output_dir")
    if run is None and report["epoch"] > 0 and report.get("checkpoint"):
        run = str(Path(report["checkpoint"]).parent)
    return {
        "output_dir": run,
        **{k: report.get(k) for k in ("backend", "lm_eval_version", "limit", "batch_size", "dtype", "chat_template")},
        "tasks": {name: [t["metric"], t.get("num_fewshot")] for name, t in sorted(report["tasks"].items())},
    }


def same_settings(report: dict, settings: EvalSettings) -> bool:
    """Whether a report was scored as `settings` would score now (harness version, backend, row limits, and per
    task the metric and few-shot count): then it need not be redone."""
    import lm_eval

    wanted = {t.name: [t.metric, t.num_fewshot] for t in settings.tasks}
    have = {name: [t.get("metric"), t.get("num_fewshot")] for name, t in report.get("tasks", {}).items()}
    return (
        have == wanted
        and report.get("backend") == settings.backend
        and report.get("lm_eval_version") == lm_eval.__version__
        and report.get("limit") == {t.name: t.limit or settings.limit for t in settings.tasks}
    )


def _refuse_strangers(found: list[tuple[Path, dict]]) -> None:
    """A report whose identity differs from the run's majority came from another run or other settings:
    merged, its score could be crowned best while meaning something else."""
    ids = [(path, identity(r)) for path, r in found]
    for key in ids[0][1] if ids else []:
        values = [json.dumps(i[key], sort_keys=True) for _, i in ids if i[key] is not None]
        if len(set(values)) < 2:
            continue
        common = max(set(values), key=lambda v: (values.count(v), -values.index(v)))
        for path, i in ids:
            if i[key] is not None and json.dumps(i[key], sort_keys=True) != common:
                others = values.count(common)
                raise EvalsError(
                    f"{path}: from another run or other settings: {key} is {json.dumps(i[key])} here but "
                    f"{common} in {others} other report(s) of {path.parent}; move it out, or re-run that epoch"
                )


def read_reports(output_dir: str | Path) -> list[dict]:
    """All reports of one run, by epoch. A file whose name does not match its epoch (a copy, a stale
    duplicate) or that belongs to another run or other settings is an EvalsError naming it."""
    found = []
    for path in sorted((Path(output_dir) / REPORTS_DIR).glob("epoch_*.json")):
        report = read(path)
        match = NAME.match(path.name)
        if match is None or int(match.group(1)) != report["epoch"]:
            raise EvalsError(
                f"{path}: holds epoch {report['epoch']} but is named {path.name} (a copy or a stale duplicate?); "
                f"remove it, or rename it epoch_{report['epoch']}.json if it is the only report of that epoch"
            )
        found.append((path, report))
    _refuse_strangers(found)
    return sorted((r for _, r in found), key=lambda r: r["epoch"])
