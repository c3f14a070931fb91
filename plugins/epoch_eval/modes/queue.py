"""queue mode: each epoch's job goes to the run's file queue (evals/queue.py), for `evals watch OUTPUT_DIR` on
GPUs that see the directory; training waits only when max_pending_checkpoints await."""

from __future__ import annotations

import logging

from evals import queue
from evals.errors import EvalsError
from evals.spec import EvalJob
from evals.status import EpochStatus
from plugins.epoch_eval.modes.base import Mode

LOG = logging.getLogger(__name__)


class Queue(Mode):
    name = "queue"

    def start(self) -> None:
        queue.create(self.run.output_dir)  # marks the directory as a run for `evals watch`

    def hand_over(self, state, epoch, step, checkpoint, kwargs, gpus) -> None:
        self._clear_old_jobs(epoch)
        LOG.info("epoch_eval: queued %s", queue.enqueue(self.run.job(epoch, step, checkpoint)))

    def end(self) -> None:
        queue.mark_training_done(self.run.output_dir)

    def unblock_hint(self) -> str:
        return (
            f"start `evals watch {self.run.output_dir}` on GPUs that see this directory (or train with "
            "epoch_eval.mode: same_node to score on this node between epochs)"
        )

    def withdraw(self, row: EpochStatus, reason: str) -> EvalJob | None:
        pending = queue.queue_dir(self.run.output_dir, "pending") / f"epoch_{row.epoch}.json"
        try:
            job = EvalJob.load(pending)
            queue.file_failed(self.run.output_dir, pending, reason, row.epoch)
        except (EvalsError, OSError):
            return None  # claimed by a watcher meanwhile: it runs
        return job

    def _clear_old_jobs(self, epoch: int) -> None:
        """A re-queued epoch (its earlier eval failed or went unscored): its old job files go, so it has one row."""
        for state_dir in ("done", "failed"):
            old = queue.queue_dir(self.run.output_dir, state_dir) / f"epoch_{epoch}.json"
            old.unlink(missing_ok=True)
            (old.parent / f"{old.name}.reason.txt").unlink(missing_ok=True)
