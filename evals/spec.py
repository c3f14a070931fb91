"""What to evaluate and on which model: the settings the plugin and an eval job share.

A job is a self-contained JSON file, so the same runner serves the plugin's `subprocess` mode and
`evals watch` on another machine (`queue` mode).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.errors import EvalsError
from evals.trackers import Trackers
from prep.outputs import write_json
from prep.paths import special_file
from prep.sizing.eval_modes import ModeName

Backend = Literal["hf", "vllm"]
AUTO_BATCH = re.compile(r"auto(:[1-9][0-9]*)?")


class TaskSpec(BaseModel):
    """One lm-eval task (or group) with its own few-shot count and the metric the reports track."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    num_fewshot: int = Field(ge=0)
    metric: str = Field(min_length=1, description="lm-eval metric name without filter, e.g. acc, acc_norm")
    limit: int | float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description=(
            "rows per (sub)task for this task, overriding the block's limit (MMLU has 57 subtasks, HellaSwag one)"
        ),
    )


# The Open LLM Leaderboard (v1) settings: MMLU 5-shot acc, HellaSwag 10-shot acc_norm.
LEADERBOARD_TASKS = [
    TaskSpec(name="mmlu", num_fewshot=5, metric="acc"),
    TaskSpec(name="hellaswag", num_fewshot=10, metric="acc_norm"),
]


class EvalSettings(BaseModel):
    """How lm-eval runs: tasks, limit, batch size, extra task directories, backend."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[TaskSpec] = Field(default_factory=lambda: [t.model_copy() for t in LEADERBOARD_TASKS])
    limit: int | float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="rows per (sub)task; for tests only"
    )
    batch_size: int | str = Field(
        default=8, description='rows per forward pass: an integer >= 1, or lm-eval\'s "auto" or "auto:N"'
    )
    include_path: list[str] = Field(default_factory=list, description="extra lm-eval task directories")
    task_data_dir: str | None = Field(
        default=None,
        description=(
            "data directory for the offline tasks in evals/tasks (mmlu_local, hellaswag_local); "
            "adds that directory to include_path and passes data_dir to the tasks"
        ),
    )
    backend: Backend = "hf"
    model_args: dict[str, Any] = Field(default_factory=dict, description="extra lm-eval model args")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: Any) -> int | str:
        """What lm-eval runs with: a positive integer (also written as a string), "auto" or "auto:N" (N >= 1,
        re-finding the largest batch N times); `big`, 0 or 1.5 passed before and failed at the first eval."""
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if value >= 1:
                return value
        elif isinstance(value, str) and AUTO_BATCH.fullmatch(value):
            return value
        raise ValueError(f'batch_size is an integer >= 1, "auto" or "auto:N" (N >= 1), not {value!r}')

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        if not tasks:
            raise ValueError("tasks is empty")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks names repeat: {names}")
        return tasks


class SlurmSettings(BaseModel):
    """The sbatch template of `epoch_eval.mode: slurm`: one batch job per checkpoint runs `evals run JOB`."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    account: str | None = None
    time: str | None = Field(default=None, description="wall-clock limit, sbatch syntax (e.g. 04:00:00)")
    gpus: int = Field(default=0, ge=0, description="GPUs per eval job (--gpus); 0: none asked")
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem: str | None = Field(default=None, description="memory per node, sbatch syntax (e.g. 200G)")
    extra_sbatch: list[str] = Field(
        default_factory=list, description="more sbatch options, one per `#SBATCH` line (e.g. --qos=high)"
    )
    setup: str | None = Field(
        default=None, description="shell line run before the eval (e.g. `source /opt/venv/bin/activate`)"
    )
    command: str | None = Field(
        default=None, description="how the job calls the evals CLI; default: this Python's `-m evals.cli`"
    )
    max_resubmits: int = Field(default=2, ge=0, description="a failed or preempted job is resubmitted this often")
    wait_at_end: bool = Field(
        default=True, description="training ends only when every epoch is scored (resubmitting as needed)"
    )

    @field_validator("extra_sbatch")
    @classmethod
    def _options(cls, lines: list[str]) -> list[str]:
        bad = [x for x in lines if not x.startswith("-") or "\n" in x]
        if bad:
            raise ValueError(f"extra_sbatch takes sbatch options such as --qos=high, one per item; got {bad}")
        return lines


class Submission(BaseModel):
    """One `sbatch` of a job: the scheduler's id and where the job's output goes."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    log: str
    submitted_at: str


class SbatchRefusal(BaseModel):
    """An `sbatch` that failed (controller down or restarting, a full queue): retried, then recorded."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(description="when (time.time())")
    error: str


class EvalJob(BaseModel):
    """One checkpoint to score; written by the plugin, run by `evals run` / `evals watch` / an sbatch job."""

    model_config = ConfigDict(extra="forbid")

    output_dir: str = Field(description="the training run's output_dir; the report goes to its eval_reports/")
    epoch: int = Field(ge=0)
    global_step: int = Field(ge=0)
    checkpoint: str = Field(description="the checkpoint directory (or the base model for epoch 0)")
    model_args: dict[str, Any] = Field(description="lm-eval model args: pretrained, peft/lora_local_path, ...")
    mode: ModeName
    settings: EvalSettings
    slurm: SlurmSettings | None = Field(default=None, description="slurm mode: the sbatch template")
    submissions: list[Submission] = Field(default_factory=list, description="slurm mode: every sbatch, oldest first")
    refusals: list[SbatchRefusal] = Field(
        default_factory=list, description="slurm mode: the sbatch failures since the last accepted submission"
    )
    trackers: Trackers | None = Field(
        default=None, description="queue/slurm: the training's W&B run, tensorboard directory, trackio run"
    )

    @classmethod
    def load(cls, path: Path) -> EvalJob:
        """A job file; one that is not one is an EvalsError naming the file and the first bad field."""
        if (what := special_file(path)) is not None:
            raise EvalsError(f"{path}: {what}; give a job file (eval_queue/*/epoch_N.json)")
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise EvalsError(f"{path}: no such job file") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(file)"
            raise EvalsError(f"{path}: not an eval job: field {where}: {err['msg']}") from exc

    def save(self, path: Path) -> Path:
        write_json(path, self.model_dump(mode="json"))
        return path
