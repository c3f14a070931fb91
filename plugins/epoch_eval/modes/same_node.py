"""same_node mode: each epoch is scored on the training node's own GPUs, between epochs, inside `axolotl train`.

Two ways, chosen by `score_from` (auto picks memory when it can):
- memory: lm-eval's HFLM on the model training holds (rank 0's replica): no second copy of the weights, so it
  fits beside any run that keeps whole weights on a GPU: LoRA/QLoRA (a 70B QLoRA keeps about 55 of 80 GiB) and
  DDP or ZeRO-1/2 full fine-tunes. Not with ZeRO-3 or FSDP: their weights are sharded over the ranks.
- checkpoint: `evals run` on the saved checkpoint in a child process with a clean environment, on the node's
  GPUs beside what training keeps resident (ZeRO-3 with optimizer offload keeps about 26 GiB of 80 per GPU).
  Every rank frees its allocator's cache and measures its GPU's free memory; rank 0 sizes the eval to the
  smallest free figure: vLLM's `gpu_memory_utilization` (a per-instance budget vLLM checks against free memory
  at start) and `tensor_parallel_size` (the node's GPUs), or the hf backend's `max_memory_per_gpu` with
  `parallelize`. An eval that cannot fit is a failed report that says so, not an out-of-memory crash.

Meanwhile the other ranks wait on a file (ranks.py), so no collective can time out however long the eval takes.
"""

from __future__ import annotations

import gc
import logging
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import report
from evals.jobs import failed_report, job_path, run_in_subprocess
from evals.runner import task_manager
from evals.trackers import log_in_child, scores
from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.in_memory import evaluate_in_memory
from plugins.epoch_eval.modes.base import Mode
from prep.sizing.plan import read_deepspeed

LOG = logging.getLogger(__name__)
GiB = 2**30
CHILD_OVERHEAD = 2 * GiB  # per GPU: the child's CUDA context, NCCL's buffers, the allocator's slack
MIN_CACHE = 1 * GiB  # per GPU beyond the weights: vLLM's KV cache or the hf backend's activations, at the least


class Unfit(RuntimeError):
    """The eval cannot fit in the GPU memory training leaves free."""


def sharded(cfg: Any, run_dir: Path) -> bool:
    """Whether the training's weights are split over the ranks (ZeRO-3, FSDP): no rank holds the whole model."""
    if cfg.get("fsdp") or cfg.get("fsdp_config"):
        return True
    ds = cfg.get("deepspeed")
    return bool(ds) and read_deepspeed(ds, run_dir).stage >= 3


def score_from(config: EpochEvalConfig, cfg: Any, run_dir: Path) -> str:
    """memory or checkpoint, as the block asks and the run allows (pre_model_load refuses memory where it cannot)."""
    if config.score_from != "auto":
        return config.score_from
    return "memory" if config.backend == "hf" and not sharded(cfg, run_dir) else "checkpoint"


@dataclass(frozen=True)
class GpuMemory:
    host: str
    device: int
    free: int
    total: int


def measure() -> list[GpuMemory]:
    """Every rank: drop what the allocator caches, then the free and total memory of this rank's GPU, gathered
    from all ranks (one short collective; empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    gc.collect()
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info()
    mine = GpuMemory(socket.gethostname(), torch.cuda.current_device(), int(free), int(total))
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    gathered: list[GpuMemory | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return [g for g in gathered if g is not None]


def weights_bytes(model_dir: str) -> float | None:
    """The bytes of weights a local model directory holds (safetensors, else .bin); None for a hub id."""
    path = Path(model_dir)
    if not path.is_dir():
        return None
    files = list(path.glob("*.safetensors")) or list(path.glob("*.bin"))
    return float(sum(f.stat().st_size for f in files)) if files else None


def sized(
    model_args: dict[str, Any], backend: str, gpus: list[GpuMemory], weights: float | None
) -> tuple[dict[str, Any], str]:
    """The child's lm-eval model args sized to this host's GPUs as training leaves them, and a line saying how.
    Raises Unfit when even the weights do not fit."""
    here = sorted((g for g in gpus if g.host == socket.gethostname()), key=lambda g: g.device)
    if not here:
        return model_args, "no GPU: the eval runs on the CPU"
    free = min(g.free for g in here)
    total = min(g.total for g in here)
    budget = free - CHILD_OVERHEAD
    args = dict(model_args)
    if backend == "vllm":
        tp = int(args.get("tensor_parallel_size") or len(here))
        if tp > len(here):
            raise Unfit(f"tensor_parallel_size {tp} is more than the {len(here)} GPU(s) training uses on this node")
        need = (weights or 0) / tp + MIN_CACHE
        utilization = math.floor(budget / total * 100) / 100
        if "gpu_memory_utilization" in args:
            utilization = min(utilization, float(args["gpu_memory_utilization"]))
        args.update(tensor_parallel_size=tp, gpu_memory_utilization=utilization)
        how = f"vLLM on {tp} GPU(s), gpu_memory_utilization {utilization:.2f} of {total / GiB:.0f} GiB"
    else:
        spread = len(here)
        need = (weights or 0) / spread + MIN_CACHE
        if spread > 1:
            args.update(parallelize=True, max_memory_per_gpu=f"{max(1, int(budget / GiB))}GiB")
        how = f"hf on {spread} GPU(s), at most {budget / GiB:.1f} GiB each"
    free_line = f"{free / GiB:.1f} GiB free of {total / GiB:.0f} GiB on the fullest GPU beside training"
    if weights is not None and need > budget:
        raise Unfit(
            f"the eval needs {need / GiB:.1f} GiB per GPU ({weights / GiB:.1f} GiB of weights over the GPUs, "
            f"+{MIN_CACHE / GiB:.0f} GiB for the cache) but {free_line} leaves {budget / GiB:.1f} GiB after "
            f"{CHILD_OVERHEAD / GiB:.0f} GiB of process overhead; use mode queue with `evals watch` on other "
            "GPUs, or score_from: memory for an adapter run"
        )
    return args, f"{how}; {free_line}"


class SameNode(Mode):
    name = "same_node"
    children_log = False  # the training process logs the scores, into its own trackers

    def __init__(self, run) -> None:
        super().__init__(run)
        self._manager = None

    @classmethod
    def refuse(cls, config: EpochEvalConfig, cfg: Any, run_dir: Path) -> None:
        if config.score_from == "memory" and sharded(cfg, run_dir):
            raise ValueError(
                "epoch_eval: score_from memory evaluates the in-memory model, but this run shards its weights over "
                f"the ranks (deepspeed={cfg.get('deepspeed')}, fsdp={cfg.get('fsdp') or cfg.get('fsdp_config')}); "
                "use score_from checkpoint (or auto)"
            )

    @property
    def measures_gpus(self) -> bool:
        return self.run.score_from == "checkpoint"

    def describe(self, epoch: int) -> str:
        return f"scoring epoch {epoch}"

    def held(self, epoch: int) -> bool:
        return False  # nothing runs elsewhere: an epoch without its report is scored again

    def make_room(self) -> None:
        """Nothing is held: each epoch is scored before training goes on."""

    def hand_over(self, state, epoch, step, checkpoint, kwargs, gpus) -> None:
        result = self._score(state, epoch, step, checkpoint, kwargs, gpus)
        self._log(state, result)
        if result["status"] != "ok" and self.run.config.stop_on_failure:
            raise SystemExit(
                f"epoch_eval: epoch {epoch} eval {result['status']} (stop_on_failure is set); "
                f"see {report.report_path(self.run.output_dir, epoch)}"
            )

    def _score(self, state, epoch: int, step: int, checkpoint: str, kwargs: dict, gpus: list[GpuMemory]) -> dict:
        """The in-memory model when it holds this epoch's weights and the run allows it, else the checkpoint in
        a child process sized to the free memory."""
        if self.run.score_from == "memory" and step == state.global_step:
            return self._in_memory(epoch, step, checkpoint, kwargs["model"], kwargs["processing_class"])
        job = self.run.job(epoch, step, checkpoint)
        path = job.save(job_path(self.run.output_dir, epoch))
        started = time.time()
        try:
            model_args, how = sized(
                job.model_args, job.settings.backend, gpus, weights_bytes(job.model_args["pretrained"])
            )
        except Unfit as exc:
            LOG.error("epoch_eval: epoch %d cannot be scored on this node: %s", epoch, exc)
            return report.read(failed_report(job, exc, started, where={"name": "same_node", "job_id": "-"}))
        LOG.info("epoch_eval: epoch %d: %s", epoch, how)
        job.model_args = model_args
        job.save(path)
        result = run_in_subprocess(path)
        assert result is not None  # nothing can take a same_node job away
        return result

    def _in_memory(self, epoch: int, step: int, checkpoint: str, model, tokenizer) -> dict:
        started = time.time()
        if self._manager is None:  # indexing lm-eval's task files takes seconds: once per run
            self._manager = task_manager(self.run.config)
        tasks = evaluate_in_memory(model, tokenizer, self.run.config, self._manager)
        built = report.build(
            epoch=epoch,
            global_step=step,
            checkpoint=checkpoint,
            mode="same_node",
            settings=self.run.config,
            tasks=tasks,
            started=started,
            dtype=str(model.dtype).removeprefix("torch."),
            output_dir=self.run.output_dir,
            where={"name": "same_node", "job_id": "in memory"},
        )
        LOG.info("epoch_eval: wrote %s", report.write(self.run.output_dir, built))
        return built

    def _log(self, state, result: dict) -> None:
        """Scores into the trainer's history (trainer_state.json) and the trackers, at the epoch's own step."""
        state.log_history.append({**scores(result), "epoch": result["epoch"], "step": result["global_step"]})
        log_in_child(self.run.trackers, report.report_path(self.run.output_dir, result["epoch"]), label="training")
