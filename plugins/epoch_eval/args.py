"""The plugin's config: one nested top-level key `epoch_eval:`. Axolotl silently drops unknown top-level keys, so
everything lives in this block, where unknown keys are errors (extra="forbid"). The modes are the table in
prep/sizing/eval_modes.py."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from evals.spec import EvalSettings, SlurmSettings
from prep.sizing.eval_modes import DEFAULT_MAX_PENDING, MODES, ModeName

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
REMIND_LIMIT_S = 600.0  # a wait says it is still waiting at least this often


def seconds(value: float | int | str | None) -> float | None:
    """A duration: seconds as a number, or a number with a unit (90s, 30m, 6h, 2d)."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration: give seconds, or a number with s, m, h or d (e.g. 6h)")
    return float(match.group(1)) * UNITS[match.group(2)]


class EpochEvalConfig(EvalSettings):
    """lm-eval scores (MMLU 5-shot acc, HellaSwag 10-shot acc_norm by default) after every epoch."""

    mode: ModeName = Field(
        default="same_node",
        description="; ".join(f"{m.name}: {m.at_epoch_end}" for m in MODES.values()),
    )
    score_from: Literal["auto", "memory", "checkpoint"] = Field(
        default="auto",
        description=(
            "same_node: memory scores the in-memory model (hf backend; not with ZeRO-3 or FSDP, whose weights are "
            "sharded), checkpoint runs lm-eval on the saved checkpoint in a child process; auto: memory when it can"
        ),
    )
    stop_on_failure: bool = Field(default=False, description="a failed eval ends the run (default: record, go on)")
    eval_base_model: bool = Field(default=False, description="also score the model before training, as epoch 0")
    slurm: SlurmSettings = Field(default_factory=SlurmSettings, description="mode slurm: the sbatch template")
    max_pending_checkpoints: int = Field(
        default=DEFAULT_MAX_PENDING,
        ge=1,
        description=(
            "queue/slurm: checkpoints kept on disk for their eval beyond save_total_limit; at an epoch end "
            "training waits while this many still await their eval"
        ),
    )
    poll_s: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds between looks at the eval jobs while training waits",
    )
    max_wait: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description=(
            "queue/slurm: how long one wait may last (seconds, or 30m, 6h, 2d): at an epoch end for room among "
            "the held checkpoints, and at the end of training for the last evals (slurm wait_at_end); "
            "null waits as long as it takes, saying so every remind_s"
        ),
    )
    on_max_wait: Literal["fail", "continue"] = Field(
        default="fail",
        description=(
            "when max_wait runs out: fail ends training with an error naming the evals it waited for; continue "
            "withdraws the evals no watcher or Slurm job has started (their epochs get a failed report, "
            "'unscored') and training goes on"
        ),
    )
    remind_s: float = Field(
        default=REMIND_LIMIT_S,
        gt=0,
        allow_inf_nan=False,
        le=REMIND_LIMIT_S,
        description="while training waits it says so, with the command that would unblock it, this often",
    )

    @field_validator("max_wait", mode="before")
    @classmethod
    def _duration(cls, value: float | int | str | None) -> float | None:
        return seconds(value)

    def settings(self) -> EvalSettings:
        """The lm-eval part, as an eval job carries it."""
        return EvalSettings.model_validate(self.model_dump(include=set(EvalSettings.model_fields)))

    def held_checkpoints(self) -> int:
        """The most checkpoints this plugin keeps beyond `save_total_limit` (unscored ones): what a disk
        estimate adds to the Trainer's save_total_limit + 1 while rotating. A blocking mode scores each
        checkpoint before the next save, so it holds none."""
        return self.max_pending_checkpoints if MODES[self.mode].holds_checkpoints else 0

    @model_validator(mode="after")
    def _memory_is_hf(self) -> EpochEvalConfig:
        if self.score_from == "memory" and self.backend != "hf":
            raise ValueError(
                "epoch_eval: score_from memory evaluates the in-memory model with lm-eval's HFLM; "
                f"backend {self.backend!r} scores a saved checkpoint: use score_from checkpoint or auto"
            )
        if self.score_from != "auto" and self.mode != "same_node":
            raise ValueError(f"epoch_eval: score_from is for mode same_node; mode {self.mode} scores saved checkpoints")
        return self


class EpochEvalArgs(BaseModel):
    """Merged into Axolotl's config schema by get_input_args()."""

    epoch_eval: EpochEvalConfig | None = None
