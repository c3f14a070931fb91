"""The GPUs the time model knows: bf16 dense peak, memory and link bandwidths, and the utilization a tuned
training stack reaches on them.

Peaks and HBM bandwidths are the vendors' datasheet figures (dense bf16, no sparsity). `hfu` is the hardware
FLOPs utilization (recomputation counted) that MosaicML's llm-foundry reports for FSDP full-shard training with
activation checkpointing and flash attention (scripts/train/benchmarking/README.md): A100-80GB 68.5% (30B,
4096 tokens, 8 GPUs), H100 53.9% (7B, 4096 tokens, 8 GPUs); H200 has the H100's compute and is given its figure;
L40S has no published counterpart and is assumed at 50%. Link figures are what NCCL's all_gather reaches on
NVLink (A100 about 230 GB/s bus bandwidth, H100/H200 about 360 GB/s) and PCIe 4.0/5.0 x16 to the host.

`inter_node_gbps` is the default network of a node of that GPU, all its ports together, as instance sheets list
it: 8 x 200 Gb/s InfiniBand HDR for A100 nodes (DGX A100, Azure ND A100 v4; MosaicML's published A100 runs:
"1600 Gbps node-node interconnect"), 8 x 400 Gb/s NDR for H100/H200 nodes (DGX H100; AWS p5: 3200 Gbps EFA);
clouds often give less (AWS p4d/p4de A100: 400 Gbps EFA), so `prep fit --inter-node-gbps` sets it. L40S
servers: 400 Gb/s assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9


@dataclass(frozen=True)
class Gpu:
    key: str
    name: str
    peak: float  # bf16 dense FLOP/s
    hbm: float  # memory bandwidth, B/s
    hfu: float  # utilization a tuned FSDP + checkpointing stack reaches (llm-foundry)
    nvlink: float  # per-GPU collective bandwidth inside a node, B/s
    inter_node_gbps: float  # a node's network to other nodes, all ports together, Gb/s
    pcie: float  # host <-> GPU, B/s
    memory_gib: float  # what the driver reports, GiB


GPUS = {
    g.key: g
    for g in (
        Gpu("a100-40gb", "A100-SXM4-40GB", 312e12, 1555 * GB, 0.685, 230 * GB, 1600, 25 * GB, 40),
        Gpu("a100-80gb", "A100-SXM4-80GB", 312e12, 2039 * GB, 0.685, 230 * GB, 1600, 25 * GB, 80),
        Gpu("h100", "H100-SXM5-80GB", 989e12, 3350 * GB, 0.539, 360 * GB, 3200, 50 * GB, 80),
        Gpu("h200", "H200-SXM-141GB", 989e12, 4800 * GB, 0.539, 360 * GB, 3200, 50 * GB, 140),
        Gpu("l40s", "L40S-48GB", 362e12, 864 * GB, 0.50, 25 * GB, 400, 25 * GB, 45),
    )
}


def gpu_for_device(name: str, memory_bytes: float) -> Gpu | None:
    """The table entry for what torch.cuda reports (device name and memory), or None for a GPU not in it."""
    upper = name.upper()
    if "A100" in upper:
        return GPUS["a100-80gb" if memory_bytes > 50 * 2**30 else "a100-40gb"]
    for key, tag in (("h200", "H200"), ("h100", "H100"), ("l40s", "L40S")):
        if tag in upper:
            return GPUS[key]
    return None
