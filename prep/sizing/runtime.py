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
  calibrated on the measured H200 step (below).
Compute time = FLOPs / (peak x utilization), utilization = the GPU's published FSDP figure (gpus.py) x
`STACK`, which carries our stack (Hugging Face transformers under Axolotl, SDPA/flash kernels) relative to
llm-foundry's: calibrated on the Llama-2-7B shape's plain full fine-tune measured on one H200 (8,290 tokens/s,
../shared/notes/gpu-measurements.md).

Per optimizer step, on top of the micro batches' compute:
- ZeRO-3 gathers the 16-bit weights for the forward and the backward (the recomputation reuses the backward's,
  stage3_max_reuse_distance) and reduce-scatters 16-bit gradients: 3 x 2P (n-1)/n bytes per GPU per micro
  batch, over NVLink inside a node and the per-GPU network port between nodes; prefetching overlaps it with
  compute, so a micro batch takes the longer of the two. ZeRO-0/1/2 and DDP all-reduce the gradients once per
  step (2 x 2P (n-1)/n bytes), overlapped with the last backward.
- Optimizer offload (ZeRO-Offload, Ren et al. 2021, arXiv:2101.06840): each micro batch's gradient partition
  crosses PCIe to the host (2 B per parameter / n), the updated 16-bit partition comes back once per step, and
  DeepSpeed's CPU Adam runs on the host: memory-bound, 30 B per parameter (fp32 weight, gradient and two moments
  read, three written, a bf16 copy), at `HOST_MEMORY_BW` per node; neither is assumed to overlap.
- On the GPU, the optimizer step reads and writes 16 B per (local) trainable parameter at HBM speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from prep.sizing.gpus import Gpu
from prep.sizing.plan import Plan
from prep.sizing.shape import ModelShape
from prep.tokens import ChatTokens, MixtureTokens

STACK = 0.931  # our stack vs llm-foundry's utilization; reproduces the 7B H200 step (0.494 s for 4096 tokens)
DEQUANT_BYTES = 4.5  # per 4-bit parameter and pass: 0.5 B NF4 read, 2 B bf16 written, 2 B read by the matmul
DEQUANT_BW_FRACTION = 0.18  # of HBM bandwidth; reproduces the QLoRA 70B H200 step (4.69 s for 4096 tokens)
HOST_MEMORY_BW = 150e9  # B/s a two-socket host sustains for CPU Adam (assumed: half of 16 DDR4-3200 channels)
CPU_ADAM_BYTES = 30.0
GPU_OPTIMIZER_BYTES = 16.0
GRAD_BYTES_OVER_PCIE = 2.0


@dataclass(frozen=True)
class Workload:
    """What one epoch feeds the GPUs, and how that was found out."""

    tokens: float  # real tokens per epoch (after Axolotl's length filter and validation split)
    trainable: float
    rows: float
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
    flops_per_token: float
    steps_per_epoch: int
    params: float
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
        """Model FLOPs utilization as usually published (6 FLOPs per parameter per token, no recomputation)."""
        per_gpu = self.workload.tokens / max(self.seconds_per_epoch, 1e-12) / self.gpus
        return per_gpu * 6 * self.params / self.gpu.peak

    def to_json(self, price: float | None) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {
            "gpu": self.gpu.key,
            "gpus": self.gpus,
            "epochs": self.epochs,
            "tokens_per_epoch": round(self.workload.tokens),
            "trainable_tokens_per_epoch": round(self.workload.trainable),
            "rows_per_epoch": round(self.workload.rows),
            "sequences_per_epoch": round(self.workload.sequences),
            "packing_efficiency": self.workload.packing_efficiency,
            "tokens_from": self.workload.how,
            "flops_per_token": self.flops_per_token,
            "steps_per_epoch": self.steps_per_epoch,
            "seconds_per_step": self.seconds_per_step,
            "seconds_per_epoch": self.seconds_per_epoch,
            "total_seconds": self.total_seconds,
            "gpu_hours": self.gpu_hours,
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


def run_time(
    plan: Plan, shape: ModelShape, work: Workload, gpu: Gpu, nodes: int, gpus_per_node: int, trainable: float
) -> RunTime:
    """Time of `plan` on `nodes` x `gpus_per_node` of `gpu`, one data-parallel process per GPU."""
    dp = nodes * gpus_per_node
    per_token = flops_per_token(plan, shape, work.attention_context, trainable if plan.adapter else 0.0)
    micro_batches = work.sequences / plan.micro_batch  # over all GPUs
    steps = max(ceil(micro_batches / (plan.gradient_accumulation * dp)), 1)
    tokens_per_micro = work.computed_tokens / max(micro_batches, 1e-12)
    compute = per_token * tokens_per_micro / (gpu.peak * gpu.hfu * STACK)
    link = gpu.network if nodes > 1 else gpu.nvlink
    share = (dp - 1) / dp
    weights16 = 2 * matmul_params(shape) + 2 * shape.vocab * shape.hidden
    z = plan.sharding
    parts: dict[str, float] = {}
    ga = plan.gradient_accumulation
    if plan.adapter and plan.quant_bits:
        passes = 3 if plan.gradient_checkpointing else 2
        parts["dequantization"] = ga * passes * shape.linear_params * DEQUANT_BYTES / (gpu.hbm * DEQUANT_BW_FRACTION)
    if z.stage == 3 and dp > 1 and not plan.adapter:
        comm = 3 * weights16 * share / link
        parts["compute"] = ga * compute
        parts["zero3 communication (not hidden)"] = ga * max(comm - compute, 0.0)
    else:
        grads = 2 * 2 * (trainable if plan.adapter else shape.params) * share / link if dp > 1 else 0.0
        parts["compute"] = ga * compute
        parts["gradient all-reduce (not hidden)"] = max(grads - compute * 2 / 3, 0.0)
    local = trainable / (dp if z.stage >= 1 else 1)
    if z.offload_optimizer:
        parts["pcie (gradients, weights)"] = (ga + 1) * GRAD_BYTES_OVER_PCIE * local / gpu.pcie
        parts["cpu adam"] = local * gpus_per_node * CPU_ADAM_BYTES / HOST_MEMORY_BW
    else:
        parts["optimizer step"] = local * GPU_OPTIMIZER_BYTES / gpu.hbm
    return RunTime(
        gpu=gpu,
        gpus=dp,
        epochs=plan.epochs,
        workload=work,
        flops_per_token=per_token * work.computed_tokens / max(work.tokens, 1e-12),
        steps_per_epoch=steps,
        params=shape.params,
        step_parts={k: v for k, v in parts.items() if v > 0 or k == "compute"},
    )
