"""The plugin's config: one nested top-level key `epoch_eval:`. Axolotl silently drops unknown
top-level keys, so everything lives in this block, where unknown keys are errors (extra="forbid")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from evals.spec import EvalSettings, SlurmSettings

ASYNC_MODES = ("queue", "slurm")  # the eval runs elsewhere while training goes on


class EpochEvalConfig(EvalSettings):
    """lm-eval scores (MMLU 5-shot acc, HellaSwag 10-shot acc_norm by default) after every epoch."""

    mode: Literal["inline", "subprocess", "queue", "slurm"] = Field(
        default="inline",
        description=(
            "inline: the in-memory model, one process, small models; subprocess: lm-eval on the saved "
            "checkpoint in a child process (training waits); queue: only write a job for `evals watch`; "
            "slurm: sbatch one job per checkpoint"
        ),
    )
    stop_on_failure: bool = Field(default=False, description="a failed eval ends the run (default: record, go on)")
    eval_base_model: bool = Field(default=False, description="also score the model before training, as epoch 0")
    slurm: SlurmSettings = Field(default_factory=SlurmSettings, description="mode slurm: the sbatch template")
    max_pending_checkpoints: int = Field(
        default=2,
        ge=1,
        description=(
            "queue/slurm: checkpoints kept on disk for their eval beyond save_total_limit; at an epoch end "
            "training waits while this many still await their eval"
        ),
    )
    poll_s: float = Field(default=30.0, gt=0, description="seconds between looks at the eval jobs while training waits")

    def settings(self) -> EvalSettings:
        """The lm-eval part, as an eval job carries it."""
        return EvalSettings.model_validate(self.model_dump(include=set(EvalSettings.model_fields)))

    def held_checkpoints(self) -> int:
        """The most checkpoints this plugin keeps beyond `save_total_limit` (unscored ones): what a disk
        estimate adds to the Trainer's save_total_limit + 1 while rotating. Inline and subprocess modes
        score each checkpoint before the next save, so they hold none."""
        return self.max_pending_checkpoints if self.mode in ASYNC_MODES else 0

    @model_validator(mode="after")
    def _inline_is_hf(self) -> EpochEvalConfig:
        if self.mode == "inline" and self.backend != "hf":
            raise ValueError(
                "epoch_eval: mode inline evaluates the in-memory model with lm-eval's HFLM; "
                f"backend {self.backend!r} needs mode subprocess, queue or slurm"
            )
        return self


class EpochEvalArgs(BaseModel):
    """Merged into Axolotl's config schema by get_input_args()."""

    epoch_eval: EpochEvalConfig | None = None
