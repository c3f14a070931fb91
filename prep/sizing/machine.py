"""What the machine offers: GPUs, host RAM and free disk, detected here or given on the `prep fit` command line."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil

from prep.sizing.gpus import Gpu, gpu_for_device


@dataclass(frozen=True)
class Machine:
    gpus_per_node: int  # GPUs this node offers (visible to CUDA, or given)
    gpu_mem: float | None  # bytes per GPU (the smallest, when they differ); None: no GPU to check against
    gpu_name: str
    nodes: int
    processes_per_node: int  # data-parallel processes per node (what actually shares the model states)
    ram: float | None  # host RAM the run can use per node, bytes; None: not known (planning for other hardware)
    disk_free: float | None  # free bytes at output_dir; None: not known
    described: str  # where the figures come from, for the table
    gpu: Gpu | None = None  # the GPU table entry the time model uses; None: not timed
    inter_node_gbps: float | None = None  # the nodes' network, all ports of a node; None: the GPU type's default

    @property
    def dp(self) -> int:
        return self.nodes * self.processes_per_node


def free_disk(path: Path) -> float:
    """Free bytes on the filesystem that will hold `path` (its nearest existing parent)."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return float(shutil.disk_usage(path).free)


def detect(output_dir: Path) -> Machine:
    """This process's machine. World size comes from the launcher (torchrun/accelerate set WORLD_SIZE)."""
    import torch

    gpus = torch.cuda.device_count()
    mems = [torch.cuda.get_device_properties(i).total_memory for i in range(gpus)]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(min(world, max(gpus, 1)))))
    return Machine(
        gpus_per_node=gpus,
        gpu_mem=float(min(mems)) if mems else None,
        gpu_name=torch.cuda.get_device_name(0) if gpus else "no GPU visible",
        nodes=max(world // max(local, 1), 1),
        processes_per_node=local,
        ram=float(psutil.virtual_memory().available),
        disk_free=free_disk(output_dir),
        described="detected on this machine (RAM: available now)",
        gpu=gpu_for_device(torch.cuda.get_device_name(0), mems[0]) if gpus else None,
    )
