"""The environment an eval child gets: this process's, without the launcher's distributed variables (the child
would take itself for a rank of the training job: lm-eval's Accelerator joins its process group) and the
parent's W&B service (the child would attach to the parent's own open run instead of its own)."""

from __future__ import annotations

import os

# what torchrun, accelerate, DeepSpeed's launcher and MPI put in a rank's environment
LAUNCH_VARIABLES = {
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
    "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "CROSS_RANK", "CROSS_SIZE", "LOCAL_SIZE",
}  # fmt: skip
LAUNCH_PREFIXES = ("TORCHELASTIC_", "ACCELERATE_", "OMPI_COMM_WORLD_", "PMI_", "DEEPSPEED_")
PARENT_SERVICES = {"WANDB_SERVICE"}


def child_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """`environ` without the launcher's distributed variables and the parent's W&B service."""
    drop = LAUNCH_VARIABLES | PARENT_SERVICES
    return {k: v for k, v in environ.items() if k not in drop and not k.startswith(LAUNCH_PREFIXES)}
