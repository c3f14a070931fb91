"""Whether the per-epoch eval fits where its mode runs it, before the run starts.

same_node scores on the training GPUs while training keeps its resident state: its weights (or their shard),
gradients and optimizer state where not offloaded, ZeRO-3's gathered-layer buffers and the CUDA context, but not
the activations, freed between steps. What the eval adds per GPU:
- memory (the in-memory model, hf): one forward at a time of one eval sequence: a layer's activations and the
  fp32 logits, for the longest eval request (MMLU 5-shot and HellaSwag 10-shot stay under 2,048 tokens);
- checkpoint (a child process): the weights in bf16 spread over the node's GPUs (vLLM's tensor parallelism or
  hf's `parallelize`), at least 1 GiB of KV cache or activations, and the child's own CUDA context.
The plugin measures the real free memory at each epoch end and sizes the eval from it (plugins/epoch_eval/
same_node.py); this is the same arithmetic ahead of time, so a plan whose eval cannot fit is refused like a
memory refusal (check `eval_memory`).

queue runs its evals on GPUs beside training (`evals watch`): with none planned, training stops at the epoch
end where max_pending_checkpoints await their eval, so `prep fit` warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prep.sizing.config import PreflightConfig
from prep.sizing.estimate import Estimate, GiB
from prep.sizing.eval_modes import DEFAULT_MAX_PENDING
from prep.sizing.findings import Finding, fmt
from prep.sizing.machine import Machine
from prep.sizing.plan import Plan
from prep.sizing.shape import ModelShape

EVAL_SEQ = 2048  # tokens of the longest request: MMLU 5-shot and HellaSwag 10-shot contexts stay under this
MIN_CACHE = 1 * GiB  # the plugin's own floor (plugins/epoch_eval/modes/same_node.py MIN_CACHE)
EVAL_WEIGHT_BYTES = 2  # the checkpoint is loaded in bf16


def score_from(plan: Plan, block: Mapping[str, Any]) -> str:
    """memory or checkpoint, as the plugin chooses (plugins/epoch_eval/modes/same_node.py score_from)."""
    asked = str(block.get("score_from") or "auto")
    if asked != "auto":
        return asked
    return "memory" if str(block.get("backend") or "hf") == "hf" and plan.sharding.stage < 3 else "checkpoint"


def eval_need(plan: Plan, shape: ModelShape, how: str, gpus: int, cfg: PreflightConfig) -> tuple[float, str]:
    """Bytes the eval adds on each GPU it uses, and what they are."""
    if how == "memory":
        seq = min(EVAL_SEQ, plan.seq_len) if plan.seq_len else EVAL_SEQ
        layer = seq * shape.hidden * cfg.activation_factor
        logits = seq * shape.vocab * 4
        return (
            layer + logits,
            f"one {seq}-token forward of the in-memory model (a layer {fmt(layer)}, logits {fmt(logits)})",
        )
    weights = shape.params * EVAL_WEIGHT_BYTES / gpus
    overhead = cfg.gpu_overhead_gb * GiB
    return weights + MIN_CACHE + overhead, (
        f"the checkpoint in bf16 over {gpus} GPU(s) ({fmt(weights)} each) + {fmt(MIN_CACHE)} cache + "
        f"{fmt(overhead)} for the eval process"
    )


def eval_findings(
    plan: Plan, shape: ModelShape, est: Estimate, config: Mapping[str, Any], machine: Machine, cfg: PreflightConfig,
    eval_gpus: int | None,
) -> list[Finding]:  # fmt: skip
    block = config.get("epoch_eval")
    if not isinstance(block, Mapping):
        return []
    mode = str(block.get("mode") or "same_node")
    if mode == "queue":
        return _queue_findings(block, eval_gpus)
    if mode != "same_node":
        return []
    how = score_from(plan, block)
    gpus = 1 if how == "memory" else machine.processes_per_node
    need, what = eval_need(plan, shape, how, gpus, cfg)
    resident = est.gpu_total - est.gpu["activations"]
    if machine.gpu_mem is None:
        return [Finding("eval_memory", "eval memory / GPU", fmt(need), machine.gpu_name, "skip",
                        f"same_node, score_from {how}: {what}; not checked: no GPU given or visible")]  # fmt: skip
    usable = machine.gpu_mem * (1 - cfg.gpu_headroom)
    free = usable - resident
    ok = need <= free
    left = f"leaving {fmt(free)}" if free >= 0 else f"{fmt(-free)} more than the GPU has: nothing is left"
    note = (
        f"same_node, score_from {how}: {what}; training keeps {fmt(resident)} of {fmt(usable)} usable per GPU "
        f"between epochs (its activations are freed), {left}"
    )
    if not ok:
        note += (
            ". change: mode queue with `evals watch` on other GPUs, or slurm"
            + ("; score_from memory (hf backend), which needs no second copy" if how == "checkpoint" and plan.sharding.stage < 3 else "")
            + "; or more GPUs per node (the checkpoint's share shrinks)"
        )  # fmt: skip
    return [Finding("eval_memory", "eval memory / GPU", fmt(need), f"{fmt(max(free, 0))} free beside training",
                    "ok" if ok else "fail", note)]  # fmt: skip


def _queue_findings(block: Mapping[str, Any], eval_gpus: int | None) -> list[Finding]:
    if eval_gpus:
        return [Finding("info", "eval GPUs", str(eval_gpus), "", "info",
                        f"queue: `evals watch OUTPUT_DIR` runs on {eval_gpus} GPU(s) beside training")]  # fmt: skip
    pending = int(block.get("max_pending_checkpoints") or DEFAULT_MAX_PENDING)
    return [
        Finding(
            "info",
            "eval GPUs",
            "> 0",
            "none planned (--eval-gpus)",
            "warn",
            f"mode queue scores on GPUs beside training (`evals watch OUTPUT_DIR`); with none, training stops at the "
            f"end of epoch {pending + 1} while {pending} checkpoint(s) await their eval (until max_wait, if set). "
            "On one node with no spare GPUs use mode same_node (scores between epochs on the training GPUs), or "
            "give --eval-gpus N for the GPUs you will run the watcher on",
        )
    ]
