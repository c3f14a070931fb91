"""What a recipe asks for, read from the resolved Axolotl config (or the raw YAML, for `prep fit`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prep.sizing.errors import PreflightError
from prep.sizing.eval_modes import DEFAULT_MAX_PENDING, MODES
from prep.sizing.recipe import check_values

EIGHT_BIT_OPTIMIZERS = ("8bit",)  # adamw_bnb_8bit, paged_adamw_8bit, ...: one byte per Adam moment
AXOLOTL_SAVE_TOTAL_LIMIT = 4  # what Axolotl's trainer builder passes when save_total_limit is unset


@dataclass(frozen=True)
class Sharding:
    """ZeRO stage (0 none, 1 optimizer, 2 +gradients, 3 +weights; FSDP FULL_SHARD counts as 3, SHARD_GRAD_OP as 2)
    and offloads. `per_node`: FSDP's HYBRID_SHARD(_ZERO2), which shards within each node and replicates across
    nodes."""

    stage: int = 0
    offload_optimizer: bool = False
    offload_param: bool = False
    gather_16bit_on_save: bool = True
    deepspeed: bool = False
    source: str = "none"
    per_node: bool = False

    def group(self, dp: int, gpus_per_node: int) -> int:
        """How many processes share one copy of the sharded states."""
        return min(dp, gpus_per_node) if self.per_node else dp


@dataclass(frozen=True)
class Plan:
    base_model: str
    trust_remote_code: bool
    adapter: str | None  # "lora" | "qlora" | None
    quant_bits: int | None  # 4 or 8 when the frozen base is loaded quantized
    lora_r: int
    lora_targets: list[str] | None  # None: every Linear layer
    lora_modules_to_save: list[str]
    compute_bytes: int  # 2 for bf16/fp16, 4 for fp32
    optimizer: str
    seq_len: int
    micro_batch: int
    gradient_checkpointing: bool
    memory_efficient_attention: bool  # flash/sdpa kernels never hold the s x s score matrix
    sharding: Sharding
    saves: int | None  # checkpoints the run writes; None when it depends on the dataset size
    save_total_limit: int
    held_checkpoints: int  # unscored checkpoints epoch_eval keeps beyond save_total_limit
    save_only_model: bool
    output_dir: Path
    datasets: list[Mapping[str, Any]]
    use_cpu: bool
    epochs: float = 1.0
    gradient_accumulation: int = 1
    sample_packing: bool = False
    pad_to_sequence_len: bool = False
    val_set_size: float = 0.0  # a fraction, or a row count when >= 1 (as Axolotl reads it)
    chat_template_jinja: str | None = None

    @property
    def eight_bit_optimizer(self) -> bool:
        return any(tag in self.optimizer for tag in EIGHT_BIT_OPTIMIZERS)


def _get(cfg: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = cfg.get(key)
    return default if value is None else value


def read_deepspeed(value: Any, run_dir: Path) -> Sharding:
    """The ZeRO stage and offloads of a `deepspeed:` value: a JSON path (relative to the run directory) or a dict."""
    source = "the recipe's deepspeed mapping"
    if isinstance(value, (str, Path)):
        path = run_dir / value  # an absolute value replaces run_dir
        if not path.is_file():
            raise PreflightError(
                f"deepspeed: {value} not found (looked at {path}; relative paths are read from "
                f"the run directory {run_dir})"
            )
        try:
            value = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise PreflightError(f"deepspeed: {path} is not valid JSON: {e}") from e
        source = str(path)
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise PreflightError(f"deepspeed: expected a JSON path or a mapping, got {type(value).__name__}")
    zero = value.get("zero_optimization") or {}
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise PreflightError(f"deepspeed {source}: zero_optimization.stage must be 0-3, got {stage!r}")

    def device(key: str) -> bool:
        dev = (zero.get(key) or {}).get("device", "none")
        if dev not in ("none", "cpu", "nvme", None):
            raise PreflightError(
                f"deepspeed {source}: zero_optimization.{key}.device must be none/cpu/nvme, got {dev!r}"
            )
        return dev in ("cpu", "nvme")

    gather = zero.get(
        "stage3_gather_16bit_weights_on_model_save", zero.get("gather_16bit_weights_on_model_save", False)
    )
    return Sharding(
        stage=stage,
        offload_optimizer=device("offload_optimizer"),
        offload_param=device("offload_param"),
        gather_16bit_on_save=bool(gather) if stage == 3 else True,
        deepspeed=True,
        source=source,
    )


# FSDP sharding strategies, by the Trainer's `fsdp` option words and by accelerate's `sharding_strategy` names and
# numbers (torch.distributed.fsdp.ShardingStrategy): (ZeRO-equivalent stage, sharded within each node only)
FSDP_STRATEGIES: dict[str, tuple[int, bool]] = {
    "full_shard": (3, False),
    "shard_grad_op": (2, False),
    "no_shard": (0, False),
    "hybrid_shard": (3, True),
    "hybrid_shard_zero2": (2, True),
    "_hybrid_shard_zero2": (2, True),
    "1": (3, False),
    "2": (2, False),
    "3": (0, False),
    "4": (3, True),
    "5": (2, True),
}
FSDP_OTHER_WORDS = ("offload", "auto_wrap")


def _fsdp(cfg: Mapping[str, Any]) -> Sharding | None:
    """FSDP from the Trainer's `fsdp` option (a string such as "full_shard auto_wrap offload", or a list of those
    words) and/or `fsdp_config` (accelerate's keys, with or without the `fsdp_` prefix); both forms give the same
    plan."""
    words_value = cfg.get("fsdp")
    block = cfg.get("fsdp_config")
    if not words_value and not block:
        return None
    if isinstance(words_value, str):
        words = words_value.lower().split()
    elif isinstance(words_value, list):
        words = [str(w).lower() for w in words_value]
    elif words_value in (None, True):
        words = []
    else:
        raise PreflightError(f"fsdp: expected a string or a list of words, got {type(words_value).__name__}")
    for word in words:
        if word not in FSDP_STRATEGIES and word not in FSDP_OTHER_WORDS:
            known = ", ".join([*FSDP_STRATEGIES][:5] + list(FSDP_OTHER_WORDS))
            raise PreflightError(f"fsdp: unknown option {word!r} (known: {known})")
    if block is not None and not isinstance(block, Mapping):
        raise PreflightError(f"fsdp_config: expected a mapping, got {type(block).__name__}")
    conf = {str(k).removeprefix("fsdp_"): v for k, v in (block or {}).items()}
    strategy = next((w for w in words if w in FSDP_STRATEGIES), None)
    if conf.get("sharding_strategy") is not None:
        name = str(conf["sharding_strategy"]).lower()
        if name not in FSDP_STRATEGIES:
            raise PreflightError(f"fsdp_config.sharding_strategy: unknown value {conf['sharding_strategy']!r}")
        strategy = name
    stage, per_node = FSDP_STRATEGIES[strategy or "full_shard"]
    if conf.get("reshard_after_forward") is False and stage == 3:  # FSDP2: keep the gathered weights to backward
        stage = 2
    offload = "offload" in words or bool(conf.get("offload_params"))
    return Sharding(
        stage=stage,
        offload_optimizer=offload,
        offload_param=offload,
        gather_16bit_on_save=True,
        source="fsdp",
        per_node=per_node,
    )


def held_checkpoints(cfg: Mapping[str, Any]) -> int:
    """Checkpoints the per-epoch eval plugin keeps beyond `save_total_limit` while their evals wait (the modes
    whose evals run elsewhere: prep/sizing/eval_modes.py)."""
    block = cfg.get("epoch_eval")
    if not isinstance(block, Mapping):
        return 0
    mode = MODES.get(str(block.get("mode") or "same_node"))
    if mode is None or not mode.holds_checkpoints:
        return 0
    return int(block.get("max_pending_checkpoints") or DEFAULT_MAX_PENDING)


def count_saves(cfg: Mapping[str, Any]) -> int | None:
    """Checkpoints the Trainer writes, as Axolotl's builder sets them up (save_steps wins, default: every epoch).

    None when the count depends on the dataset size (integer save_steps without max_steps).
    """
    epochs = float(_get(cfg, "num_epochs", 1))
    steps = cfg.get("save_steps")
    if cfg.get("saves_per_epoch"):
        return math.ceil(float(cfg["saves_per_epoch"]) * epochs)
    if steps:
        if isinstance(steps, float) and steps < 1:
            return math.floor(1 / steps)
        return int(cfg["max_steps"]) // int(steps) if cfg.get("max_steps") else None
    strategy = str(_get(cfg, "save_strategy", "epoch")).lower()
    if strategy == "no":
        return 0
    return math.ceil(epochs) if strategy == "epoch" else None


def plan_from_config(cfg: Mapping[str, Any], run_dir: Path, where: str = "the recipe") -> Plan:
    """Read a recipe. `run_dir` is where relative paths resolve: the directory Axolotl is started from; `where`
    names the recipe in errors."""
    check_values(cfg, where)
    if not cfg.get("base_model"):
        raise PreflightError(f"{where}: the config has no base_model")
    ds = cfg.get("deepspeed")
    sharding = read_deepspeed(ds, run_dir) if ds else (_fsdp(cfg) or Sharding())
    adapter = cfg.get("adapter") or None
    quant = 4 if cfg.get("load_in_4bit") else 8 if cfg.get("load_in_8bit") else None
    targets = cfg.get("lora_target_modules")
    if isinstance(targets, str):
        targets = [targets]
    if adapter and not cfg.get("lora_target_linear") and not targets:
        raise PreflightError(f"adapter: {adapter} needs lora_target_modules or lora_target_linear: true")
    half = cfg.get("bf16") not in (None, False) or cfg.get("fp16") not in (None, False)
    attn = str(_get(cfg, "attn_implementation", "")).lower()
    return Plan(
        base_model=str(cfg.get("base_model_config") or cfg["base_model"]),
        trust_remote_code=bool(cfg.get("trust_remote_code")),
        adapter=adapter,
        quant_bits=quant,
        lora_r=int(_get(cfg, "lora_r", 8)),
        lora_targets=None if cfg.get("lora_target_linear") else list(targets or []),
        lora_modules_to_save=list(_get(cfg, "lora_modules_to_save", [])),
        compute_bytes=2 if half else 4,
        optimizer=str(_get(cfg, "optimizer", "adamw_torch_fused")),
        seq_len=int(_get(cfg, "sequence_len", 2048)),
        micro_batch=int(_get(cfg, "micro_batch_size", 1)),
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing")),
        memory_efficient_attention=attn != "eager" and not cfg.get("eager_attention"),
        sharding=sharding,
        saves=count_saves(cfg),
        save_total_limit=int(cfg.get("save_total_limit") or AXOLOTL_SAVE_TOTAL_LIMIT),
        held_checkpoints=held_checkpoints(cfg),
        save_only_model=bool(cfg.get("save_only_model")),
        output_dir=run_dir / str(_get(cfg, "output_dir", "./model-out")),
        datasets=list(cfg.get("datasets") or []),
        use_cpu=bool(cfg.get("use_cpu")),
        epochs=float(_get(cfg, "num_epochs", 1)),
        gradient_accumulation=int(_get(cfg, "gradient_accumulation_steps", 1)),
        sample_packing=bool(cfg.get("sample_packing")),
        pad_to_sequence_len=bool(cfg.get("pad_to_sequence_len")),
        val_set_size=float(_get(cfg, "val_set_size", 0.0)),
        chat_template_jinja=cfg.get("chat_template_jinja") if cfg.get("chat_template") == "jinja" else None,
    )
