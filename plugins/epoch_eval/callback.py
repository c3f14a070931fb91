"""The Trainer callback: at each epoch end make sure a checkpoint is saved, then score it in `on_save`
(which runs after the checkpoint directory is written; `on_epoch_end` runs before the save).

In queue and slurm modes the eval runs elsewhere, so the callback also owns checkpoint rotation (see
retention.py): a checkpoint stays until its eval ran. At an epoch end training waits while
`max_pending_checkpoints` checkpoints still await their eval, which bounds the disk they hold; in slurm
mode it resubmits failed jobs meanwhile, and (wait_at_end) training ends when every epoch is scored.

The Trainer's `state.epoch` is fractional at the epoch-end save (0.989, 1.978 in the smoke run), so
the boundary is recognised by step: `on_epoch_end` notes the step, and the `on_save` at that step is
the epoch's. The epoch is numbered round(state.epoch).

Only the main process evaluates or writes; every rank then meets at a barrier so none runs ahead.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from evals import queue, report, slurm
from evals.errors import EvalsError
from evals.jobs import run_in_subprocess
from evals.runner import task_manager
from evals.spec import EvalJob
from evals.status import held_checkpoints
from plugins.epoch_eval.args import ASYNC_MODES, EpochEvalConfig
from plugins.epoch_eval.inline import evaluate_in_memory
from plugins.epoch_eval.retention import rotate

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
    return EvalJob(
        output_dir=output_dir,
        epoch=epoch,
        global_step=global_step,
        checkpoint=checkpoint,
        model_args=model_args,
        mode=config.mode if config.mode != "inline" else "subprocess",  # inline never makes a job
        settings=config.settings(),
        slurm=config.slurm if config.mode == "slurm" else None,
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
        trainer,
    ) -> None:
        self.config = config
        self.output_dir = str(Path(output_dir).resolve())
        self.base_model = base_model
        self.adapter = adapter
        self.lora_r = lora_r
        self.trainer = trainer
        self._epoch_end: tuple[int, int] | None = None  # (global_step, epoch) of the last epoch end
        self._manager = None
        # the Trainer would rotate before any callback sees the save: the limit is ours from here on
        self.save_total_limit = trainer.args.save_total_limit
        trainer.args.save_total_limit = None

    # ---- hooks -------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if self.config.mode == "queue" and state.is_world_process_zero:
            queue.create(self.output_dir)  # marks the directory as a run for `evals watch`
        if self.config.eval_base_model and state.global_step == 0:
            self._evaluate(state, epoch=0, checkpoint=self.base_model, **kwargs)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._epoch_end = (state.global_step, round(state.epoch))
        control.should_save = True  # the eval needs this epoch's checkpoint, whatever save_strategy says
        if self.config.mode in ASYNC_MODES:  # room for this epoch's checkpoint among the held ones
            self._wait(state, lambda held: len(held) < self.config.max_pending_checkpoints)
        return control

    def on_save(self, args, state, control, **kwargs):
        if self._epoch_end is not None and self._epoch_end[0] == state.global_step:
            epoch = self._epoch_end[1]
            self._epoch_end = None
            self._evaluate(
                state, epoch=epoch, checkpoint=str(Path(self.output_dir) / f"checkpoint-{state.global_step}"), **kwargs
            )
        if args.should_save:
            rotate(
                self.output_dir, self.save_total_limit, state.best_model_checkpoint, held_checkpoints(self.output_dir)
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self.config.mode == "queue" and state.is_world_process_zero:
            queue.mark_training_done(self.output_dir)
        if self.config.mode == "slurm" and self.config.slurm.wait_at_end:
            self._wait(state, lambda held: not held, base_model_too=True)

    def _wait(self, state, enough, base_model_too: bool = False) -> None:
        """Poll the eval jobs (every rank reads the shared files; rank 0 resubmits failed Slurm jobs)
        until `enough(held checkpoints)`; at the end of training also until the base model is scored."""
        told = False
        while True:
            if self.config.mode == "slurm" and state.is_world_process_zero:
                slurm.reconcile(self.output_dir)
            held = held_checkpoints(self.output_dir)
            base_pending = (
                base_model_too and self.config.eval_base_model and not report.report_path(self.output_dir, 0).is_file()
            )
            if enough(held) and not base_pending:
                return
            if not told:
                LOG.warning(
                    "epoch_eval: training waits for %d unscored checkpoint(s)%s (max_pending_checkpoints %d): %s",
                    len(held),
                    " and the base model" if base_pending else "",
                    self.config.max_pending_checkpoints,
                    sorted(held),
                )
                told = True
            time.sleep(self.config.poll_s)

    # ---- work --------------------------------------------------------------------------------
    def _evaluate(self, state, *, epoch: int, checkpoint: str, **kwargs: Any) -> None:
        from axolotl.utils.distributed import barrier

        result = None
        if state.is_world_process_zero:
            LOG.info(
                "epoch_eval: epoch %d (step %d), %s mode, checkpoint %s",
                epoch,
                state.global_step,
                self.config.mode,
                checkpoint,
            )
            if self.config.mode == "inline":
                result = self._inline(state, epoch, checkpoint, kwargs["model"], kwargs["processing_class"])
            else:
                job = eval_job(
                    self.config,
                    output_dir=self.output_dir,
                    base_model=self.base_model,
                    adapter=self.adapter,
                    lora_r=self.lora_r,
                    epoch=epoch,
                    global_step=state.global_step,
                    checkpoint=checkpoint,
                )
                if self.config.mode == "queue":
                    LOG.info("epoch_eval: queued %s", queue.enqueue(job))
                elif self.config.mode == "slurm":
                    try:
                        slurm.submit(job.save(slurm.job_path(self.output_dir, epoch)))
                    except EvalsError as exc:  # the job file keeps the refusal; reconcile retries it
                        LOG.error(
                            "epoch_eval: epoch %d: %s; training goes on, and the job is submitted again "
                            "whenever training looks at its evals (until the refusals span %.0f min)",
                            epoch,
                            exc,
                            slurm.SBATCH_PATIENCE_S / 60,
                        )
                else:
                    result = run_in_subprocess(job.save(slurm.job_path(self.output_dir, epoch)))
            if result is not None:
                self._log(result)
        barrier()
        if result is not None and result["status"] != "ok" and self.config.stop_on_failure:
            raise RuntimeError(
                f"epoch_eval: epoch {epoch} eval {result['status']} (stop_on_failure is set); "
                f"see {report.report_path(self.output_dir, epoch)}"
            )

    def _inline(self, state, epoch: int, checkpoint: str, model, tokenizer) -> dict:
        started = time.time()
        if self._manager is None:  # indexing lm-eval's task files takes seconds: once per run
            self._manager = task_manager(self.config)
        tasks = evaluate_in_memory(model, tokenizer, self.config, self._manager)
        built = report.build(
            epoch=epoch,
            global_step=state.global_step,
            checkpoint=checkpoint,
            mode="inline",
            settings=self.config,
            tasks=tasks,
            started=started,
            dtype=str(model.dtype).removeprefix("torch."),
            output_dir=self.output_dir,
        )
        LOG.info("epoch_eval: wrote %s", report.write(self.output_dir, built))
        return built

    def _log(self, result: dict) -> None:
        """Scores into the trainer's log, so W&B / tensorboard chart them per epoch."""
        logs = {
            f"epoch_eval/{name}/{t['metric']}": t["value"] for name, t in result["tasks"].items() if t["status"] == "ok"
        }
        logs["epoch_eval/failed_tasks"] = sum(t["status"] != "ok" for t in result["tasks"].values())
        self.trainer.log(logs)
