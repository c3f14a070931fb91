"""The `preflight:` block of a recipe: switches, budgets, and the assumptions behind the memory figures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CheckName = Literal["gpu_memory", "eval_memory", "host_ram", "disk", "datasets", "model", "time", "recipe_keys"]
GpuType = Literal["a100-40gb", "a100-80gb", "h100", "h200", "l40s"]


class PreflightConfig(BaseModel):
    """Validated on its own (extra="forbid"): Axolotl silently drops unknown top-level keys, not ours."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    override: list[CheckName | Literal["all"]] = Field(
        default_factory=list,
        description="Checks allowed to fail without stopping the run, e.g. [disk]; [all] only reports.",
    )
    gpu_headroom: float = Field(
        0.10, ge=0, lt=1, description="Fraction of each GPU kept free for allocator fragmentation."
    )
    gpu_overhead_gb: float = Field(2.0, ge=0, description="GiB per GPU for CUDA context, NCCL and cuBLAS buffers.")
    activation_factor: float = Field(
        34.0,
        gt=0,
        description="Bytes of activations per token per hidden unit in one layer (Korthikanti et al. 2022, eq. 1).",
    )
    logits_bytes: float = Field(8.0, ge=0, description="Bytes per token per vocabulary entry: fp32 logits and grad.")
    host_buffer_factor: float = Field(
        1.5, ge=1, description="Multiplier on offloaded host RAM (DeepSpeed's estimator additional_buffer_factor)."
    )
    disk_budget_gb: float | None = Field(
        None, gt=0, description="GiB the run may write at output_dir (a quota df does not show); default: free space."
    )
    dataset_rows: int = Field(100, ge=1, description="Rows of each dataset file parsed as its declared type.")
    max_days: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Wall-clock budget of the training run, in days."
    )
    max_gpu_hours: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="GPU-hour budget of the training run."
    )
    gpu_type: GpuType | None = Field(
        None, description="GPU to time the run on when none is detected (or the detected one is not in the table)."
    )
    price_per_gpu_hour: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Prints the run's cost at this price."
    )
    inter_node_gbps: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Network between nodes, Gb/s per node (all ports; e.g. 400 on AWS p4d); default: the GPU type's.",
    )
    count_sample_rows: int = Field(
        10_000, ge=100, description="Rows tokenized to estimate tokens per epoch when the dataset is larger."
    )
