"""The Trainer callback: at each epoch end make sure a checkpoint is saved, then hand it to the mode (modes/):
scored here (same_node), or given to `evals watch` (queue) or Slurm (slurm), as the mode table
(prep/sizing/eval_modes.py) says.

The epoch end is recognised by step: `on_epoch_end` (before the save) notes the step and records the epoch in
eval_reports/training.json; the `on_save` at that step is the epoch's (the Trainer's `state.epoch` there is
fractional, 0.989 in the smoke run; the epoch is round(state.epoch)). Rank 0 does the work of every hook while
the other ranks wait on a file (ranks.py), so no collective can time out however long an eval or a wait takes.

When training starts (a fresh run or a resume), every epoch the record holds without an ok report, and the base
model when `eval_base_model` asks for it, is scored (or queued) before training goes on; an ok report from the
same settings is never redone. In queue and slurm modes the callback owns checkpoint rotation (retention.py), so
a checkpoint stays until its eval ran, and training waits (waits.py) while `max_pending_checkpoints` still
await theirs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from evals import report, training
from evals.errors import EvalsError
from evals.jobs import failed_report
from evals.spec import EvalJob
from evals.status import held_checkpoints
from evals.trackers import Trackers, from_trainer
from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.modes import MODES
from plugins.epoch_eval.modes.same_node import GpuMemory, measure
from plugins.epoch_eval.ranks import Ranks
from plugins.epoch_eval.retention import rotate
from plugins.epoch_eval.waits import Waiter

LOG = logging.getLogger(__name__)


def eval_job(
    config: EpochEvalConfig,
    *,
    output_dir: str,
    base_model: str,
    adapter: str | None,
    lora_r: int | None,
    epoch: int,
    global_step: int,
    checkpoint: str,
    trackers: Trackers | None = None,
) -> EvalJob:
    """The job for one checkpoint. Full fine-tune: the checkpoint itself. LoRA/QLoRA: the base model plus
    the checkpoint as adapter (`peft=` for hf; `lora_local_path=` and `max_lora_rank=` for vllm, which
    then enables LoRA); epoch 0: the base model alone."""
    model_args: dict[str, Any] = dict(config.model_args)
    with_adapter = adapter is not None and epoch > 0
    model_args["pretrained"] = checkpoint if epoch > 0 and not with_adapter else base_model
    if with_adapter and config.backend == "vllm":
        model_args["lora_local_path"] = checkpoint
        if lora_r:
            model_args.setdefault("max_lora_rank", lora_r)
    elif with_adapter:
        model_args["peft"] = checkpoint
    if epoch > 0 and (Path(checkpoint) / "tokenizer_config.json").is_file():
        model_args.setdefault("tokenizer", checkpoint)  # the tokenizer training used
    mode = MODES[config.mode]
    return EvalJob(
        output_dir=output_dir,
        epoch=epoch,
        global_step=global_step,
        checkpoint=checkpoint,
        model_args=model_args,
        mode=config.mode,
        settings=config.settings(),
        trackers=trackers if mode.children_log else None,
        **mode.job_fields(config),
    )


class EpochEvalCallback(TrainerCallback):
    def __init__(
        self,
        config: EpochEvalConfig,
        *,
        output_dir: str,
        base_model: str,
        adapter: str | None,
        lora_r: int | None,
        num_epochs: float,
        score_from: str,
        trainer,
    ) -> None:
        self.config = config
        self.output_dir = str(Path(output_dir).resolve())
        self.base_model = base_model
        self.adapter = adapter
        self.lora_r = lora_r
        self.num_epochs = num_epochs
        self.score_from = score_from  # same_node: memory or checkpoint
        self.trainer = trainer
        self.ranks = Ranks(self.output_dir, config.remind_s)
        self.mode = MODES[config.mode](self)
        self.waiter = Waiter(config, self.mode)
        self.trackers = Trackers()
        self._epoch_end: tuple[int, int] | None = None  # (global_step, epoch) of the last epoch end
        # the Trainer would rotate before any callback sees the save: the limit is ours from here on
        self.save_total_limit = trainer.args.save_total_limit
        trainer.args.save_total_limit = None

    # ---- hooks: every rank runs them; rank 0 does the work, the others wait on its verdict ----------------
    def on_train_begin(self, args, state, control, **kwargs):
        self.ranks.start()
        self._rank0(
            "start",
            "scoring the base model and any epoch an earlier launch left unscored",
            lambda gpus: self._start(state, kwargs, gpus),
        )

    def on_epoch_end(self, args, state, control, **kwargs):
        self._epoch_end = (state.global_step, round(state.epoch))
        control.should_save = True  # the eval needs this epoch's checkpoint, whatever save_strategy says
        self._rank0(
            f"epoch-end-{state.global_step}",
            "waiting for room among the held checkpoints",
            lambda _gpus: self._record_epoch_end(state),
            measured=False,
        )
        return control

    def on_save(self, args, state, control, **kwargs):
        if self._epoch_end is not None and self._epoch_end[0] == state.global_step:
            step, epoch = self._epoch_end
            self._epoch_end = None
            checkpoint = self._checkpoint(step)
            self._rank0(
                f"save-{step}",
                self.mode.describe(epoch),
                lambda gpus: self._score(state, epoch, step, checkpoint, kwargs, gpus),
            )
        elif args.should_save and self.ranks.main:
            self._rotate(state)

    def on_train_end(self, args, state, control, **kwargs):
        self._rank0("end", "waiting for the last evals", lambda _gpus: self._end(), measured=False)
        self.ranks.finish()

    # ---- what rank 0 does ----------------------------------------------------------------------------------
    def _rank0(self, what: str, describe: str, work: Callable[[list[GpuMemory]], Any], measured: bool = True) -> None:
        gpus = measure() if measured and self.mode.measures_gpus else []
        self.ranks.rank0_does(what, describe, lambda: work(gpus))

    def _start(self, state, kwargs: dict[str, Any], gpus: list[GpuMemory]) -> None:
        self.mode.start()
        self.trackers = from_trainer(self.trainer)
        record = training.load(self.output_dir)
        record = training.TrainingRecord(
            mode=self.config.mode,
            num_epochs=self.num_epochs,
            eval_base_model=self.config.eval_base_model,
            base_model=self.base_model,
            epochs=record.epochs if record is not None else {},
            trackers=self.trackers,
        )
        training.save(self.output_dir, record)
        todo = [(0, 0, self.base_model)] if self.config.eval_base_model else []
        todo += [(e, end.global_step, end.checkpoint) for e, end in sorted(record.epochs.items())]
        for epoch, step, checkpoint in todo:
            if self._settled(epoch):
                continue
            if epoch > 0 and not Path(checkpoint).is_dir():
                self._lost(epoch, step, checkpoint)
                continue
            LOG.info("epoch_eval: epoch %d has no ok report from these settings: scoring it before training", epoch)
            self._score(state, epoch, step, checkpoint, kwargs, gpus)

    def _record_epoch_end(self, state) -> None:
        step, epoch = self._epoch_end  # type: ignore[misc]  # set just before
        record = training.load(self.output_dir)
        if record is not None:
            record.epochs[epoch] = training.EpochEnd(global_step=step, checkpoint=self._checkpoint(step))
            training.save(self.output_dir, record)
        self.mode.make_room()

    def _end(self) -> None:
        self.mode.end()

    def _checkpoint(self, step: int) -> str:
        return str(Path(self.output_dir) / f"checkpoint-{step}")

    def _settled(self, epoch: int) -> bool:
        """An ok report from these settings exists, or (queue, slurm) its eval is queued or running."""
        path = report.report_path(self.output_dir, epoch)
        if path.is_file():
            try:
                done = report.read(path)
            except EvalsError:
                done = None
            if done is not None and done["status"] == "ok" and report.same_settings(done, self.config):
                return True
        return self.mode.held(epoch)

    def _lost(self, epoch: int, step: int, checkpoint: str) -> None:
        """A recorded epoch whose checkpoint is gone before it was scored: a failed report says so (never silent)."""
        if report.report_path(self.output_dir, epoch).is_file():
            return
        job = self.job(epoch, step, checkpoint)
        error = FileNotFoundError(f"{checkpoint} was removed before its eval ran: epoch {epoch} cannot be scored")
        LOG.error("epoch_eval: %s", error)
        failed_report(job, error, time.time(), where={"name": "training", "job_id": "-"})

    def job(self, epoch: int, step: int, checkpoint: str) -> EvalJob:
        return eval_job(
            self.config,
            output_dir=self.output_dir,
            base_model=self.base_model,
            adapter=self.adapter,
            lora_r=self.lora_r,
            epoch=epoch,
            global_step=step,
            checkpoint=checkpoint,
            trackers=self.trackers,
        )

    def _score(
        self, state, epoch: int, step: int, checkpoint: str, kwargs: dict[str, Any], gpus: list[GpuMemory]
    ) -> None:
        LOG.info("epoch_eval: epoch %d (step %d), %s mode, %s", epoch, step, self.config.mode, checkpoint)
        self.mode.hand_over(state, epoch, step, checkpoint, kwargs, gpus)
        self._rotate(state)

    def _rotate(self, state) -> None:
        rotate(self.output_dir, self.save_total_limit, state.best_model_checkpoint, held_checkpoints(self.output_dir))
