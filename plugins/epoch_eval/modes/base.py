"""What every epoch_eval mode does for the callback, with the defaults of the modes that score elsewhere (queue,
slurm): they hold each unscored checkpoint, and training waits for room among them. A mode is a module in this
folder with a subclass of `Mode` and one line in `MODES` (modes/__init__.py); what it is for is its row of the
mode table (prep/sizing/eval_modes.py), which `evals` and `prep fit` read without importing the plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from evals.spec import EvalJob
from evals.status import EpochStatus, epochs
from plugins.epoch_eval.args import EpochEvalConfig

if TYPE_CHECKING:
    from plugins.epoch_eval.callback import EpochEvalCallback
    from plugins.epoch_eval.modes.same_node import GpuMemory


class Mode:
    name: ClassVar[str]
    children_log: ClassVar[bool] = True  # the eval's own process logs the scores to the run's trackers
    asks_scheduler: ClassVar[bool] = False  # held jobs' states come from the scheduler too (squeue)

    def __init__(self, run: EpochEvalCallback) -> None:
        self.run = run

    @classmethod
    def refuse(cls, config: EpochEvalConfig, cfg: Any, run_dir: Path) -> None:
        """Before the model loads: raise ValueError for a setup this mode cannot serve."""

    @classmethod
    def job_fields(cls, config: EpochEvalConfig) -> dict[str, Any]:
        """What an eval job of this mode carries beyond the model and the settings."""
        return {}

    @property
    def measures_gpus(self) -> bool:
        """Rank 0 needs every rank's free GPU memory before it scores (a collective all ranks join)."""
        return False

    def describe(self, epoch: int) -> str:
        return f"handing epoch {epoch} over"

    def start(self) -> None:
        """When training starts, before any epoch is scored or handed over."""

    def held(self, epoch: int) -> bool:
        """The epoch's eval is queued or running: a resume leaves it to finish."""
        return any(r.epoch == epoch and r.held for r in self.statuses())

    def statuses(self) -> list[EpochStatus]:
        return epochs(self.run.output_dir, query=self.asks_scheduler)

    def make_room(self) -> None:
        """At an epoch end, before its save: wait while max_pending_checkpoints await their evals."""
        self.run.waiter.room(self.run.config.max_pending_checkpoints)

    def hand_over(self, state, epoch: int, step: int, checkpoint: str, kwargs: dict, gpus: list[GpuMemory]) -> None:
        """Score the epoch's checkpoint, or give it to what will."""
        raise NotImplementedError

    def end(self) -> None:
        """When training ends."""

    # what training's waits (waits.py) need of a mode that scores elsewhere
    def refresh(self) -> None:
        """Bring the held jobs' states up to date before they are read."""

    def unblock_hint(self) -> str:
        raise NotImplementedError

    def withdraw(self, row: EpochStatus, reason: str) -> EvalJob | None:
        """Take back an eval nobody has started; its job, or None when it has started (it is left to finish)."""
        raise NotImplementedError
