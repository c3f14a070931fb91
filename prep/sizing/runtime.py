"""Wall-clock, GPU-hours and cost of a training run, from FLOPs per token, the GPU table and a few transfer terms.

Per token, with P the parameters in matrix multiplies (all but the input embedding), L layers, d hidden size and
c the attention context (sum of s^2 over sum of s, for packed rows under flash attention's per-row masks):
- a forward pass costs 2P + 2Ldc FLOPs (Kaplan et al. 2020, arXiv:2001.08361 sec. 2.1; causal attention
  computes QK^T and AV over half the s x s scores on average);
- full fine-tune: backward 2x forward (activation and weight gradients), so 6P, the usual training cost;
  gradient checkpointing recomputes the forward once more: 8P (Korthikanti et al. 2022, arXiv:2205.05198,
  sec. 5: "full recompute" adds one forward);
- LoRA/QLoRA: the frozen weights need only activation gradients, so their backward is 1x forward: 4P, 6P with
  checkpointing (Hu et al. 2021 sec. 4.2 saves the weight-gradient pass); attention has no weights and keeps
  its 2x backward; the adapters add 6 FLOPs per trainable parameter;
- QLoRA also dequantizes every 4-bit Linear weight on each pass (forward, recompute, backward): read 0.5 B of
  NF4, write 2 B of bf16, read it again for the matmul, 4.5 B per parameter, at a fraction of HBM bandwidth
  calibrated on the measured H200 step (below);
- an 8-bit base (`load_in_8bit`, LLM.int8(): Dettmers et al. 2022, arXiv:2208.07339) quantizes each pass's
  activations row-wise, splits out the outlier columns into a 16-bit matmul and dequantizes the int8 result; the
  backward dequantizes the weight. Its cost is counted like the 4-bit one, per parameter and pass, with its own
  constant calibrated on the one published 8-bit run (Platypus-13B, prep/sizing/published_runs.yml).
Compute time = FLOPs / (peak x utilization), utilization = the GPU's published FSDP figure (gpus.py) x
`STACK`, which carries our stack (Hugging Face transformers under Axolotl, SDPA/flash kernels) relative to
llm-foundry's: calibrated on the Llama-2-7B shape's plain full fine-tune measured on one H200 (8,290 tokens/s,
../shared/notes/gpu-measurements.md).

Per micro batch, on top of its compute:
- ZeRO-3 / FSDP full shard gathers the weights for the forward and the backward (the recomputation reuses the
  backward's: stage3_max_reuse_distance, FSDP's backward prefetch) and reduce-scatters the gradients of what is
  trained: (2 W + 2 T) (n-1)/n bytes per GPU, W the weights as stored (16-bit, or the 4-bit NF4 storage of a
  QLoRA base), T the trained parameters, n the processes that share the shards; over NVLink inside a node and
  the node's network share per GPU (`inter_node_gbps` / GPUs per node, at `NET_EFFICIENCY`) across nodes.
  Prefetching overlaps it with compute, so a micro batch takes the longer of the two. Adapters are no exception:
  their frozen base is sharded and gathered all the same.
- DeepSpeed ZeRO-3 also pays a fixed cost per layer and micro batch that does not scale with tokens: its
  per-parameter fetch and release hooks run in Python around every module, forward and backward
  (`ZERO3_OVERHEAD_PER_LAYER`: the published DeepSpeed ZeRO-3 step of a 7B on 4 A100s is 0.2 s longer than the
  FSDP step of the same model, batch and GPUs, over 32 layers). FSDP gathers one flat parameter per wrapped
  layer; the published FSDP runs leave no such cost to resolve, so none is counted.
- parameter offload brings the weight shard over PCIe for the forward and the backward.
Per optimizer step:
- ZeRO-0/1/2 and DDP all-reduce the gradients once (2 x 2T (n-1)/n bytes), overlapped with the last backward;
  FSDP's HYBRID_SHARD all-reduces each node's gradient shard across nodes.
- Optimizer offload (ZeRO-Offload, Ren et al. 2021, arXiv:2101.06840): each micro batch's gradient partition
  crosses PCIe to the host (2 B per parameter / n), the updated 16-bit partition comes back once per step, and
  DeepSpeed's CPU Adam runs on the host: memory-bound, 30 B per parameter (fp32 weight, gradient and two moments
  read, three written, a bf16 copy), at `HOST_MEMORY_BW` per node; neither is assumed to overlap.
- On the GPU, the optimizer step reads and writes 16 B per (local) trainable parameter at HBM speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import ceil
from typing import Any

from prep.sizing.accuracy import Band, regime
from prep.sizing.estimate import frozen_bytes
from prep.sizing.gpus import Gpu
from prep.sizing.plan import Plan
from prep.sizing.shape import ModelShape
from prep.tokens import ChatTokens, MixtureTokens

STACK = 0.931  # our stack vs llm-foundry's utilization; reproduces the 7B H200 step (0.494 s for 4096 tokens)
DEQUANT_BYTES = 4.5  # per 4-bit parameter and pass: 0.5 B NF4 read, 2 B bf16 written, 2 B read by the matmul
DEQUANT_BW_FRACTION = 0.18  # of HBM bandwidth; reproduces the QLoRA 70B H200 step (4.69 s for 4096 tokens)
INT8_BYTES = 5.0  # per 8-bit parameter and pass: 1 B int8 read, 2 B fp16 written, 2 B read by the matmul
INT8_BW_FRACTION = 0.16  # of HBM bandwidth; reproduces Platypus-13B's 8-bit LoRA run (5 h, published_runs.yml)
NET_EFFICIENCY = 0.64  # of the nodes' line rate NCCL's collectives reach; reproduces the 2 x 8 A100 FSDP 70B run
ZERO3_OVERHEAD_PER_LAYER = 0.2 / 32  # s per layer and micro batch under DeepSpeed ZeRO-3 (module docstring)
HOST_MEMORY_BW = 150e9  # B/s a two-socket host sustains for CPU Adam (assumed: half of 16 DDR4-3200 channels)
CPU_ADAM_BYTES = 30.0
GPU_OPTIMIZER_BYTES = 16.0
GRAD_BYTES_OVER_PCIE = 2.0


@dataclass(frozen=True)
class Workload:
    """What one epoch feeds the GPUs, and how that was found out."""

    tokens: float  # real tokens per epoch (after Axolotl's length filter and validation split)
    trainable: float | None  # tokens with a label; None when only the total was given
    rows: float | None  # None when only a token count was given
    sequences: float  # rows per epoch as the sampler batches them: packed sequences, or rows
    computed_tokens: float  # tokens the GPUs compute on, padding included
    attention_context: float  # sum(s^2) / sum(s) over the attention blocks
    how: str
    packing_efficiency: float | None = None
    counted: MixtureTokens | None = None  # the counted rows, to re-plan with another sequence_len
    counter: ChatTokens | None = None


@dataclass(frozen=True)
class RunTime:
    gpu: Gpu
    gpus: int
    epochs: float
    workload: Workload
    flops_per_token: float  # per real token, as the GPUs run them (recomputation and padding included)
    model_flops_per_token: float  # per real token, the model's own work (no recomputation): MFU's numerator
    steps_per_epoch: int
    params: float
    inter_node_gbps: float | None  # the network between nodes the time assumes; None on one node
    band: Band  # how far the model was from published runs like this one (prep/sizing/accuracy.py)
    step_parts: dict[str, float] = field(default_factory=dict)  # seconds per optimizer step, by term

    @property
    def seconds_per_step(self) -> float:
        return sum(self.step_parts.values())

    @property
    def seconds_per_epoch(self) -> float:
        return self.steps_per_epoch * self.seconds_per_step

    @property
    def total_seconds(self) -> float:
        return self.seconds_per_epoch * self.epochs

    @property
    def gpu_hours(self) -> float:
        return self.total_seconds * self.gpus / 3600

    @property
    def mfu(self) -> float:
        """Model FLOPs utilization as usually published: the model's FLOPs per token (6 per matmul parameter for a
        full fine-tune, 4 for a frozen base plus 6 per adapter parameter; attention; no recomputation) over peak."""
        per_gpu = self.workload.tokens / max(self.seconds_per_epoch, 1e-12) / self.gpus
        return per_gpu * self.model_flops_per_token / self.gpu.peak

    def band_json(self, seconds: float) -> dict[str, float | int | str | None]:
        """The band of this regime, and the range it puts around `seconds` (a time the model gave; None when the
        regime has too few published runs to bound it)."""
        low, high = self.band.expect(seconds) or (None, None)
        return {
            "regime": self.band.regime,
            "published_runs": self.band.runs,
            "median_ratio": self.band.median,
            "low_ratio": self.band.low,
            "high_ratio": self.band.high,
            "seconds_low": low,
            "seconds_high": high,
        }

    def to_json(self, price: float | None) -> dict[str, Any]:
        work = self.workload
        out: dict[str, Any] = {
            "gpu": self.gpu.key,
            "gpus": self.gpus,
            "inter_node_gbps": self.inter_node_gbps,
            "epochs": self.epochs,
            "tokens_per_epoch": round(work.tokens),
            "trainable_tokens_per_epoch": None if work.trainable is None else round(work.trainable),
            "rows_per_epoch": None if work.rows is None else round(work.rows),
            "sequences_per_epoch": round(work.sequences),
            "packing_efficiency": work.packing_efficiency,
            "tokens_from": work.how,
            "flops_per_token": self.flops_per_token,
            "steps_per_epoch": self.steps_per_epoch,
            "seconds_per_step": self.seconds_per_step,
            "seconds_per_epoch": self.seconds_per_epoch,
            "total_seconds": self.total_seconds,
            "gpu_hours": self.gpu_hours,
            "mfu": self.mfu,
            "error_band": self.band_json(self.total_seconds),
        }
        out |= {f"step_{k.replace(' ', '_')}_seconds": v for k, v in self.step_parts.items()}
        if price is not None:
            out["cost"] = self.gpu_hours * price
            out["price_per_gpu_hour"] = price
        return out


def matmul_params(shape: ModelShape) -> float:
    """Parameters that take part in matrix multiplies: all but the input embedding (a lookup)."""
    return shape.params - shape.vocab * shape.hidden


def flops_per_token(plan: Plan, shape: ModelShape, context: float, trainable: float) -> float:
    """Training FLOPs per computed token (module docstring)."""
    linear = 2 * matmul_params(shape)
    attention = 2 * shape.layers * shape.hidden * context
    recompute = 1 if plan.gradient_checkpointing else 0
    if plan.adapter:
        return (2 + recompute) * linear + (3 + recompute) * attention + 6 * trainable
    return (3 + recompute) * (linear + attention)


def network_per_gpu(gbps: float, gpus_per_node: int) -> float:
    """B/s one GPU gets of its node's network in a collective that spans nodes."""
    return gbps * 1e9 / 8 / max(gpus_per_node, 1) * NET_EFFICIENCY


def run_time(
    plan: Plan,
    shape: ModelShape,
    work: Workload,
    gpu: Gpu,
    nodes: int,
    gpus_per_node: int,
    trainable: float,
    inter_node_gbps: float | None = None,
) -> RunTime:
    """Time of `plan` on `nodes` x `gpus_per_node` of `gpu`, one data-parallel process per GPU; the nodes talk
    over `inter_node_gbps` (default: the GPU type's)."""
    dp = nodes * gpus_per_node
    gbps = inter_node_gbps or gpu.inter_node_gbps
    trained = trainable if plan.adapter else shape.params
    per_token = flops_per_token(plan, shape, work.attention_context, trainable if plan.adapter else 0.0)
    model_per_token = flops_per_token(
        replace(plan, gradient_checkpointing=False), shape, work.attention_context, trainable if plan.adapter else 0.0
    )
    micro_batches = work.sequences / plan.micro_batch  # over all GPUs
    steps = max(ceil(micro_batches / (plan.gradient_accumulation * dp)), 1)
    tokens_per_micro = work.computed_tokens / max(micro_batches, 1e-12)
    compute = per_token * tokens_per_micro / (gpu.peak * gpu.hfu * STACK)
    z = plan.sharding
    group = z.group(dp, gpus_per_node)  # processes sharing one set of shards
    net = network_per_gpu(gbps, gpus_per_node)
    ga = plan.gradient_accumulation
    passes = 3 if plan.gradient_checkpointing else 2
    stored = frozen_bytes(plan, shape) + 2 * trainable if plan.adapter else 2 * shape.params  # weights as kept
    parts: dict[str, float] = {"compute": ga * compute}
    if plan.adapter and plan.quant_bits == 4:
        parts["dequantization"] = ga * passes * shape.linear_params * DEQUANT_BYTES / (gpu.hbm * DEQUANT_BW_FRACTION)
    elif plan.adapter and plan.quant_bits == 8:
        parts["int8 matmul overhead"] = ga * passes * shape.linear_params * INT8_BYTES / (gpu.hbm * INT8_BW_FRACTION)
    if z.stage == 3 and group > 1:
        link = net if group > gpus_per_node else gpu.nvlink
        gathers = (2 * stored + 2 * trained) * (group - 1) / group / link
        parts["zero3 communication (not hidden)"] = ga * max(gathers - compute, 0.0)
        if z.deepspeed:
            parts["zero3 hooks"] = ga * shape.layers * ZERO3_OVERHEAD_PER_LAYER
        if z.per_node and nodes > 1:  # HYBRID_SHARD: each node's gradient shard is all-reduced across nodes
            parts["gradient all-reduce across nodes"] = 2 * 2 * trained / group * (nodes - 1) / nodes / net
    elif dp > 1:
        link = net if nodes > 1 else gpu.nvlink
        grads = 2 * 2 * trained * (dp - 1) / dp / link
        parts["gradient all-reduce (not hidden)"] = max(grads - compute * 2 / 3, 0.0)
    if z.offload_param:
        parts["pcie (weights)"] = ga * 2 * stored / group / gpu.pcie
    local = trainable / (group if z.stage >= 1 else 1)
    if z.offload_optimizer:
        parts["pcie (gradients, weights)"] = (ga + 1) * GRAD_BYTES_OVER_PCIE * local / gpu.pcie
        parts["cpu adam"] = local * gpus_per_node * CPU_ADAM_BYTES / HOST_MEMORY_BW
    else:
        parts["optimizer step"] = local * GPU_OPTIMIZER_BYTES / gpu.hbm
    real = max(work.tokens, 1e-12)
    return RunTime(
        gpu=gpu,
        gpus=dp,
        epochs=plan.epochs,
        workload=work,
        flops_per_token=per_token * work.computed_tokens / real,
        model_flops_per_token=model_per_token,
        steps_per_epoch=steps,
        params=shape.params,
        inter_node_gbps=gbps if nodes > 1 else None,
        band=regime(plan, nodes, tokens_per_micro),
        step_parts={k: v for k, v in parts.items() if v > 0 or k == "compute"},
    )
