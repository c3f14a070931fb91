"""Axolotl plugin: real lm-evaluation-harness scores (MMLU, HellaSwag by default) after every epoch.

Enable with `plugins: [plugins.epoch_eval.EpochEvalPlugin]` and configure in the `epoch_eval:` block
(see args.py and README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from axolotl.integrations.base import BasePlugin

from plugins.epoch_eval.args import EpochEvalArgs, EpochEvalConfig

__all__ = ["EpochEvalArgs", "EpochEvalPlugin"]

KEY = "epoch_eval"


def config_of(cfg) -> EpochEvalConfig:
    """The block with its directories made absolute: jobs run in other processes, maybe other machines."""
    config = EpochEvalConfig.model_validate(dict(cfg.get(KEY) or {}))
    return config.model_copy(
        update={
            "include_path": [str(Path(d).resolve()) for d in config.include_path],
            "task_data_dir": str(Path(config.task_data_dir).resolve()) if config.task_data_dir else None,
        }
    )


class EpochEvalPlugin(BasePlugin):
    def get_input_args(self) -> str:
        return "plugins.epoch_eval.args.EpochEvalArgs"

    def register(self, cfg: dict) -> None:
        """Runs on the raw YAML, before Axolotl's validation silently drops unknown top-level keys:
        a misspelt block (`epoch_evals:`, `epoch_eval_tasks:`) would otherwise disable the evals unseen."""
        stray = sorted(k for k in cfg if isinstance(k, str) and k.startswith(KEY) and k != KEY)
        if stray:
            raise ValueError(
                f"epoch_eval: unknown top-level key(s) {stray}; the plugin reads only the "
                f"nested `{KEY}:` block ({', '.join(EpochEvalConfig.model_fields)})"
            )

    def pre_model_load(self, cfg) -> None:
        """Refuse, before hours of loading, a setup the chosen mode cannot serve."""
        config = config_of(cfg)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if config.mode == "inline" and (world > 1 or cfg.get("deepspeed") or cfg.get("fsdp") or cfg.get("fsdp_config")):
            raise ValueError(
                f"epoch_eval: mode inline evaluates the in-memory model in one process (WORLD_SIZE="
                f"{world}, deepspeed={cfg.get('deepspeed')}); use mode subprocess or queue"
            )
        for d in [*config.include_path, *([config.task_data_dir] if config.task_data_dir else [])]:
            if not Path(d).is_dir():
                raise FileNotFoundError(f"epoch_eval: directory {d} (include_path / task_data_dir) does not exist")
        if config.mode == "slurm":
            from evals.slurm import check_template

            check_template(config.slurm, Path(cfg.output_dir))

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        from plugins.epoch_eval.callback import EpochEvalCallback

        return [
            EpochEvalCallback(
                config_of(cfg),
                output_dir=trainer.args.output_dir,
                base_model=str(cfg.base_model),
                adapter=cfg.get("adapter"),
                lora_r=cfg.get("lora_r"),
                trainer=trainer,
            )
        ]
