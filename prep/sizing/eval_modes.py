"""The one table of `epoch_eval` modes: what each does at an epoch end, where the eval runs, whether training
waits for it, whether unscored checkpoints are held beyond `save_total_limit`, and what schedules it.

The plugin (plugins/epoch_eval), `evals` (status, watch, Slurm) and the sizing (`prep fit`, preflight) all read
it: adding a mode is a row here plus its code path in the plugin. It lives at the bottom of the dependency
order (plugins -> evals -> prep) so that `prep fit` can read it without importing the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_MAX_PENDING = 2  # epoch_eval.max_pending_checkpoints when the recipe does not set it


@dataclass(frozen=True)
class EvalMode:
    name: str
    at_epoch_end: str  # what the training process does with the epoch's checkpoint
    runs_on: str  # where the eval's model runs
    training_waits: Literal["every eval", "when max_pending_checkpoints await"]
    holds_checkpoints: bool  # unscored checkpoints are kept out of save_total_limit's rotation
    scheduler: str  # what runs the job: the training process itself, `evals watch`, Slurm

    @property
    def blocking(self) -> bool:
        """Training waits for each eval to finish (the eval's time adds to the run's)."""
        return self.training_waits == "every eval"


MODES: dict[str, EvalMode] = {
    mode.name: mode
    for mode in (
        EvalMode(
            name="same_node",
            at_epoch_end=(
                "rank 0 scores the epoch while the other ranks wait on a file (no collective): the in-memory "
                "model (adapter or unsharded runs, hf backend) or the saved checkpoint in a child process with "
                "a clean environment, sized to the GPU memory training leaves free"
            ),
            runs_on="the training node's own GPUs, between epochs",
            training_waits="every eval",
            holds_checkpoints=False,
            scheduler="the training process",
        ),
        EvalMode(
            name="queue",
            at_epoch_end="writes eval_queue/pending/epoch_<n>.json for `evals watch OUTPUT_DIR`",
            runs_on="other GPUs or nodes that see OUTPUT_DIR (`evals watch`)",
            training_waits="when max_pending_checkpoints await",
            holds_checkpoints=True,
            scheduler="evals watch",
        ),
        EvalMode(
            name="slurm",
            at_epoch_end="writes eval_jobs/epoch_<n>.json and its batch script, and submits it with sbatch",
            runs_on="a Slurm job on the cluster",
            training_waits="when max_pending_checkpoints await",
            holds_checkpoints=True,
            scheduler="Slurm (sbatch, scontrol)",
        ),
    )
}
ModeName = Literal["same_node", "queue", "slurm"]
