"""The per-epoch report: `OUTPUT_DIR/eval_reports/epoch_<n>.json`, one file per evaluated checkpoint,
written atomically so `evals report` and a watcher never read half a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from evals.spec import EvalSettings
from prep.io import write_json

REPORTS_DIR = "eval_reports"


def report_path(output_dir: str | Path, epoch: int) -> Path:
    return Path(output_dir) / REPORTS_DIR / f"epoch_{epoch}.json"


def status_of(tasks: dict[str, dict[str, Any]]) -> str:
    states = {t["status"] for t in tasks.values()}
    return "ok" if states == {"ok"} else "failed" if states == {"failed"} else "partial"


def build(
    *,
    epoch: int,
    global_step: int,
    checkpoint: str,
    mode: str,
    settings: EvalSettings,
    tasks: dict[str, dict[str, Any]],
    started: float,
    model_args: dict[str, Any] | None = None,
) -> dict:
    import lm_eval

    return {
        "epoch": epoch,
        "global_step": global_step,
        "checkpoint": checkpoint,
        "mode": mode,
        "backend": settings.backend,
        "model_args": model_args or {},
        "limit": {t.name: t.limit or settings.limit for t in settings.tasks},
        "chat_template": False,
        "lm_eval_version": lm_eval.__version__,
        "status": status_of(tasks),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_time_s": round(time.time() - started, 3),
        "tasks": tasks,
    }


def write(output_dir: str | Path, report: dict) -> Path:
    path = report_path(output_dir, report["epoch"])
    write_json(path, report)
    return path


def read(path: Path) -> dict:
    """One report; a file that is not one is an error naming it."""
    try:
        report = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    missing = [k for k in ("epoch", "tasks") if not isinstance(report, dict) or k not in report]
    if missing:
        raise ValueError(f"{path}: not an epoch report, missing field(s) {missing}")
    return report


def read_reports(output_dir: str | Path) -> list[dict]:
    """All reports of one run, by epoch."""
    paths = (Path(output_dir) / REPORTS_DIR).glob("epoch_*.json")
    return sorted((read(p) for p in paths), key=lambda r: r["epoch"])
