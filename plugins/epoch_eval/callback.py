"""The Trainer callback: at each epoch end make sure a checkpoint is saved, then score it in `on_save`
(which runs after the checkpoint directory is written; `on_epoch_end` runs before the save).

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

from evals import queue, report
from evals.jobs import run_in_subprocess
from evals.runner import task_manager
from evals.spec import EvalJob
from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.inline import evaluate_in_memory

LOG = logging.getLogger(__name__)


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

    # ---- hooks -------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if self.config.eval_base_model and state.global_step == 0:
            self._evaluate(state, epoch=0, checkpoint=self.base_model, **kwargs)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._epoch_end = (state.global_step, round(state.epoch))
        control.should_save = True  # the eval needs this epoch's checkpoint, whatever save_strategy says
        return control

    def on_save(self, args, state, control, **kwargs):
        if self._epoch_end is None or self._epoch_end[0] != state.global_step:
            return  # a mid-epoch save
        epoch = self._epoch_end[1]
        self._epoch_end = None
        self._evaluate(
            state, epoch=epoch, checkpoint=str(Path(self.output_dir) / f"checkpoint-{state.global_step}"), **kwargs
        )

    def on_train_end(self, args, state, control, **kwargs):
        if self.config.mode == "queue" and state.is_world_process_zero:
            queue.mark_training_done(self.output_dir)

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
                job = self._job(state, epoch, checkpoint)
                if self.config.mode == "queue":
                    LOG.info("epoch_eval: queued %s", queue.enqueue(job))
                else:
                    result = run_in_subprocess(job.save(Path(self.output_dir) / "eval_jobs" / f"epoch_{epoch}.json"))
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
        )
        LOG.info("epoch_eval: wrote %s", report.write(self.output_dir, built))
        return built

    def _job(self, state, epoch: int, checkpoint: str) -> EvalJob:
        """Full fine-tune: the checkpoint itself. LoRA/QLoRA: the base model plus the checkpoint as adapter
        (epoch 0: the base model alone)."""
        model_args: dict[str, Any] = dict(self.config.model_args)
        adapter = self.adapter is not None and epoch > 0
        model_args["pretrained"] = checkpoint if epoch > 0 and not adapter else self.base_model
        if adapter and self.config.backend == "vllm":
            model_args["lora_local_path"] = checkpoint
            if self.lora_r:
                model_args.setdefault("max_lora_rank", self.lora_r)
        elif adapter:
            model_args["peft"] = checkpoint
        if epoch > 0 and (Path(checkpoint) / "tokenizer_config.json").is_file():
            model_args.setdefault("tokenizer", checkpoint)  # the tokenizer training used
        return EvalJob(
            output_dir=self.output_dir,
            epoch=epoch,
            global_step=state.global_step,
            checkpoint=checkpoint,
            model_args=model_args,
            mode="queue" if self.config.mode == "queue" else "subprocess",  # inline never makes a job
            settings=self.config.settings(),
        )

    def _log(self, result: dict) -> None:
        """Scores into the trainer's log, so W&B / tensorboard chart them per epoch."""
        logs = {
            f"epoch_eval/{name}/{t['metric']}": t["value"] for name, t in result["tasks"].items() if t["status"] == "ok"
        }
        logs["epoch_eval/failed_tasks"] = sum(t["status"] != "ok" for t in result["tasks"].values())
        self.trainer.log(logs)
