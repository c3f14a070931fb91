"""Eval jobs as the epoch_eval plugin makes them, on the tiny model: for the slurm, queue and vLLM tests."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from conftest import REPO

from evals.queue import EVENTS, queue_dir
from evals.spec import EvalJob
from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.callback import eval_job

SMOKE_BLOCK = yaml.safe_load((REPO / "recipes/smoke-tiny.yml").read_text())["epoch_eval"]


def smoke_config(shared_data: Path, *, hellaswag_only: bool = True, **changes) -> EpochEvalConfig:
    """The smoke recipe's epoch_eval block on the fixture's data; HellaSwag alone keeps a job short."""
    tasks = [t for t in SMOKE_BLOCK["tasks"] if t["name"] == "hellaswag_local" or not hellaswag_only]
    return EpochEvalConfig.model_validate({**SMOKE_BLOCK, "task_data_dir": str(shared_data), "tasks": tasks, **changes})


def model_job(config: EpochEvalConfig, out: Path, model: Path, epoch: int = 0) -> EvalJob:
    """The job scoring `model` itself (as for the base model), numbered `epoch`."""
    return eval_job(
        config,
        output_dir=str(out),
        base_model=str(model),
        adapter=None,
        lora_r=None,
        epoch=epoch,
        global_step=epoch,
        checkpoint=str(model),
    )


def queue_events(output_dir: Path) -> list[dict]:
    """The queue's `events.jsonl`, the log a user reads: one dict per claim, expiry and filing."""
    path = queue_dir(output_dir) / EVENTS
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.is_file() else []
