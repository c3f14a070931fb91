"""Lets a multi-process launch (torchrun, accelerate) train on a CPU-only machine as real DDP over gloo. Two things
stand in the way, both only without an accelerator: under WORLD_SIZE > 1 Axolotl pins `device_map` to the local
rank's accelerator index (`axolotl/utils/config/__init__.py`), which transformers rejects; and the HF Trainer
only treats a CPU run as distributed when accelerate is told the CPU is the device (`ACCELERATE_USE_CPU`, what
`accelerate launch --cpu` sets), else every rank trains the whole dataset on its own. accelerate then names each
rank's device `cpu:<local rank>`, which `torch.load` cannot map a resumed optimizer state to: the device is pinned
to plain `cpu` (`ACCELERATE_TORCH_DEVICE`). A GPU run is untouched."""

from __future__ import annotations

import os

import torch
from axolotl.integrations.base import BasePlugin


class CpuRanksPlugin(BasePlugin):
    def load_datasets(self, cfg, preprocess: bool = False):
        """The first hook after Axolotl normalizes the config, before TrainingArguments and the model; loads nothing."""
        if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            cfg.device_map = "cpu"
            os.environ["ACCELERATE_USE_CPU"] = "true"
            os.environ["ACCELERATE_TORCH_DEVICE"] = "cpu"
        return None
