"""What to evaluate and on which model: the settings the plugin and an eval job share.

A job is a self-contained JSON file, so the same runner serves the plugin's `subprocess` mode and
`evals watch` on another machine (`queue` mode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prep.io import write_json

Backend = Literal["hf", "vllm"]


class TaskSpec(BaseModel):
    """One lm-eval task (or group) with its own few-shot count and the metric the reports track."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    num_fewshot: int = Field(ge=0)
    metric: str = Field(min_length=1, description="lm-eval metric name without filter, e.g. acc, acc_norm")
    limit: int | float | None = Field(
        default=None,
        gt=0,
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
    limit: int | float | None = Field(default=None, gt=0, description="rows per (sub)task; for tests only")
    batch_size: int | str = 8
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

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[TaskSpec]) -> list[TaskSpec]:
        if not tasks:
            raise ValueError("tasks is empty")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks names repeat: {names}")
        return tasks


class EvalJob(BaseModel):
    """One checkpoint to score; written by the plugin, run by `evals run` / `evals watch`."""

    model_config = ConfigDict(extra="forbid")

    output_dir: str = Field(description="the training run's output_dir; the report goes to its eval_reports/")
    epoch: int = Field(ge=0)
    global_step: int = Field(ge=0)
    checkpoint: str = Field(description="the checkpoint directory (or the base model for epoch 0)")
    model_args: dict[str, Any] = Field(description="lm-eval model args: pretrained, peft/lora_local_path, ...")
    mode: Literal["subprocess", "queue"]
    settings: EvalSettings

    @classmethod
    def load(cls, path: Path) -> EvalJob:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, path: Path) -> Path:
        write_json(path, self.model_dump(mode="json"))
        return path
