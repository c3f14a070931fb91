"""The arithmetic: memory per GPU, host RAM per node and disk per save for a plan on a given number of GPUs.

Sources, so the figures can be checked:
- model states under ZeRO: Rajbhandari et al. 2020 (arXiv:1910.02054) sec. 3.1 and 5: with K bytes of optimizer
  state per parameter, stage 1 keeps 2+2+K/N_d, stage 2 2+(2+K)/N_d, stage 3 (2+2+K)/N_d bytes per parameter;
- DeepSpeed's own estimator (`estimate_zero3_model_states_mem_needs`), whose byte counts for bf16 are used here:
  fp32 gradient partitions (4 B), 4 x the largest layer for gathered parameters, host RAM x 1.5 under offload;
- activations: Korthikanti et al. 2022 (arXiv:2205.05198) eq. 1, s*b*h*(34 + 5*a*s/h) bytes per layer, and
  2*s*b*h per layer with full recomputation (gradient checkpointing);
- 4-bit NF4 with double quantization: 4 + 0.127 bits per parameter (Dettmers et al. 2023, arXiv:2305.14314 sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from prep.sizing.config import PreflightConfig
from prep.sizing.plan import Plan, Sharding
from prep.sizing.shape import ModelShape

GiB = 2**30
NF4_DOUBLE_QUANT_BITS = 4.127
LORA_PARAM_BYTES = 4  # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype) and saves them so


@dataclass(frozen=True)
class StateBytes:
    """Bytes per trainable parameter of its weight, gradient and optimizer state."""

    weight: float
    grad: float
    optimizer: float


ZERO_PAPER = StateBytes(2, 2, 12)  # fp16 weight and gradient; fp32 master copy, momentum, variance (K=12)
DEEPSPEED_MIXED = StateBytes(2, 4, 12)  # DeepSpeed keeps the gradient partitions in fp32


@dataclass(frozen=True)
class ModelStates:
    """Per-GPU bytes of weights, gradients and optimizer, and the bytes each GPU's process keeps on the host."""

    weights: float
    grads: float
    optimizer: float
    host: float

    @property
    def gpu(self) -> float:
        return self.weights + self.grads + self.optimizer


def model_states(trainable: float, state: StateBytes, sharding: Sharding, dp: int, frozen: float = 0.0) -> ModelStates:
    """ZeRO partitioning over `dp` data-parallel GPUs; `frozen` is bytes of untrained weights (sharded at stage 3)."""
    weights = trainable * state.weight + frozen
    weights /= dp if sharding.stage >= 3 else 1
    grads = trainable * state.grad / (dp if sharding.stage >= 2 else 1)
    optimizer = trainable * state.optimizer / (dp if sharding.stage >= 1 else 1)
    host = 0.0
    if sharding.offload_optimizer:  # DeepSpeed moves gradient partitions to the CPU optimizer with it
        host += grads + optimizer
        grads = optimizer = 0.0
    if sharding.offload_param:
        host += weights
        weights = 0.0
    return ModelStates(weights, grads, optimizer, host)


def activation_bytes(
    shape: ModelShape,
    seq_len: int,
    micro_batch: int,
    checkpointing: bool,
    memory_efficient_attention: bool,
    factor: float,
    logits_bytes: float,
) -> float:
    """Activations of one micro batch: stored layer inputs (or whole layers), one layer being worked on, logits."""
    s, b, h = seq_len, micro_batch, shape.hidden
    layer = s * b * h * factor + (0 if memory_efficient_attention else 5 * shape.heads * s * s * b)
    stored = 2 * s * b * h * shape.layers + layer if checkpointing else layer * shape.layers
    return stored + s * b * shape.vocab * logits_bytes


@dataclass(frozen=True)
class Estimate:
    params: int
    trainable: int
    gpu: dict[str, float]  # per-GPU components, bytes
    host_per_node: float
    disk_per_save: float
    disk_model_only: float  # per save with save_only_model: true
    disk_final: float  # the model written at output_dir when training ends
    saves: int | None
    save_total_limit: int
    held_checkpoints: int = 0  # unscored checkpoints the eval plugin keeps out of the rotation

    @property
    def gpu_total(self) -> float:
        return sum(self.gpu.values())

    def disk_run(self, per_save: float | None = None, limit: int | None = None) -> float:
        """Peak disk of the run: the Trainer writes a checkpoint before rotating out the oldest (limit+1 at once),
        and the final model lands beside the kept checkpoints. An unknown save count is bounded by the limit.
        Checkpoints the eval plugin holds unscored count on top of the limit."""
        per_save = self.disk_per_save if per_save is None else per_save
        limit = (self.save_total_limit if limit is None else limit) + self.held_checkpoints
        saves = limit + 1 if self.saves is None else self.saves
        return max(min(saves, limit + 1) * per_save, min(saves, limit) * per_save + self.disk_final)


def trainable_params(plan: Plan, shape: ModelShape) -> int:
    if not plan.adapter:
        return shape.params
    return shape.lora_params(plan.lora_r, plan.lora_targets) + shape.module_params(plan.lora_modules_to_save)


def state_bytes(plan: Plan) -> StateBytes:
    """DeepSpeed: bf16 weights, fp32 gradients, fp32 master+Adam. Plain torch: states in the parameter's dtype."""
    if plan.sharding.deepspeed and not plan.adapter:
        master = 4 if plan.compute_bytes < 4 else 0
        return StateBytes(plan.compute_bytes, 4, 8 + master)
    w = LORA_PARAM_BYTES if plan.adapter else plan.compute_bytes
    return StateBytes(w, w, 2 if plan.eight_bit_optimizer else 2 * w)


def frozen_bytes(plan: Plan, shape: ModelShape) -> float:
    """The untrained base under an adapter: quantized Linear layers, the rest in the compute dtype."""
    if not plan.adapter:
        return 0.0
    if plan.quant_bits is None:
        return shape.params * plan.compute_bytes
    bits = NF4_DOUBLE_QUANT_BITS if plan.quant_bits == 4 else 8
    return shape.linear_params * bits / 8 + (shape.params - shape.linear_params) * plan.compute_bytes


def disk_bytes(plan: Plan, shape: ModelShape, trainable: int, state: StateBytes) -> tuple[float, float, float]:
    """(per checkpoint, per checkpoint with save_only_model, final model) in bytes.

    A DeepSpeed checkpoint stores the fp32 master weights and Adam moments (12 B/param) in its optimizer shards;
    stage 1-2 also write the 16-bit module, stage 3 only when it gathers 16-bit weights. ZeRO-3 without gathering
    makes the Trainer write the DeepSpeed checkpoint even for the model alone.
    """
    model = trainable * LORA_PARAM_BYTES if plan.adapter else shape.params * plan.compute_bytes
    optimizer = trainable * state.optimizer
    ds, stage = plan.sharding.deepspeed, plan.sharding.stage
    if ds and stage == 3 and not plan.sharding.gather_16bit_on_save:
        return optimizer, optimizer, optimizer
    module_file = model if ds and stage < 3 else 0.0  # DeepSpeed's model-states file repeats the 16-bit weights
    return model + optimizer + module_file, model, model


def estimate(plan: Plan, shape: ModelShape, cfg: PreflightConfig, dp: int, gpus_per_node: int) -> Estimate:
    """All figures for `dp` data-parallel processes, `gpus_per_node` of them on each node."""
    trainable = trainable_params(plan, shape)
    state = state_bytes(plan)
    group = plan.sharding.group(dp, gpus_per_node)  # HYBRID_SHARD: each node holds a full set of shards
    states = model_states(trainable, state, plan.sharding, group, frozen_bytes(plan, shape))
    gpu = {
        "weights": states.weights,
        "gradients": states.grads,
        "optimizer": states.optimizer,
        "zero3 gathered layer": 4 * shape.largest_layer if plan.sharding.stage == 3 else 0.0,
        "activations": activation_bytes(
            shape,
            plan.seq_len,
            plan.micro_batch,
            plan.gradient_checkpointing,
            plan.memory_efficient_attention,
            cfg.activation_factor,
            cfg.logits_bytes,
        ),
        "cuda overhead": cfg.gpu_overhead_gb * GiB,
    }
    per_save, model_only, final = disk_bytes(plan, shape, trainable, state)
    return Estimate(
        params=shape.params,
        trainable=trainable,
        gpu=gpu,
        host_per_node=states.host * gpus_per_node * cfg.host_buffer_factor,
        disk_per_save=per_save,
        disk_model_only=model_only,
        disk_final=final,
        saves=plan.saves,
        save_total_limit=plan.save_total_limit,
        held_checkpoints=plan.held_checkpoints,
    )
