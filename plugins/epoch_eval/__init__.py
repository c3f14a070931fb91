"""Axolotl plugin: real lm-evaluation-harness scores (MMLU, HellaSwag by default) after every epoch.

Enable with `plugins: [plugins.epoch_eval.EpochEvalPlugin]` and configure in the `epoch_eval:` block
(see args.py and README.md).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from axolotl.integrations.base import BasePlugin

from plugins.epoch_eval.args import EpochEvalArgs, EpochEvalConfig

__all__ = ["EpochEvalArgs", "EpochEvalPlugin"]

KEY = "epoch_eval"


def local_or_hub(model: str) -> str:
    """A local model directory made absolute (a job may run from another directory or machine); a hub id as is."""
    return str(Path(model).resolve()) if Path(model).exists() else model


def config_of(cfg) -> EpochEvalConfig:
    """The block with its directories made absolute: jobs run in other processes, maybe other machines."""
    config = EpochEvalConfig.model_validate(dict(cfg.get(KEY) or {}))
    return config.model_copy(
        update={
            "include_path": [str(Path(d).resolve()) for d in config.include_path],
            "task_data_dir": str(Path(config.task_data_dir).resolve()) if config.task_data_dir else None,
        }
    )


def show_progress() -> None:
    """Axolotl drops INFO from loggers outside `axolotl.*` (a filter on each such logger and on its console
    handler), which would hide the plugin's own lines: which epoch is being scored and how, what training waits
    for. So the plugin's and evals' loggers lose that filter and write to stderr through a handler of their own."""
    for name in ("plugins.epoch_eval", "evals"):
        logger = logging.getLogger(name)
        if not any(getattr(h, "epoch_eval", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)s] [%(name)s] %(message)s"))
            handler.epoch_eval = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    for name, known in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(known, logging.Logger) and name.startswith(("plugins.epoch_eval", "evals")):
            known.filters = [f for f in known.filters if type(f).__name__ != "AxolotlOrWarnErrorFilter"]


class EpochEvalPlugin(BasePlugin):
    def get_input_args(self) -> str:
        return "plugins.epoch_eval.args.EpochEvalArgs"

    def register(self, cfg: dict) -> None:
        """Runs on the raw YAML, before Axolotl's validation silently drops unknown top-level keys:
        a misspelt block (`epoch_evals:`, `epoch_eval_tasks:`) would otherwise disable the evals unseen."""
        show_progress()
        stray = sorted(k for k in cfg if isinstance(k, str) and k.startswith(KEY) and k != KEY)
        if stray:
            raise ValueError(
                f"epoch_eval: unknown top-level key(s) {stray}; the plugin reads only the "
                f"nested `{KEY}:` block ({', '.join(EpochEvalConfig.model_fields)})"
            )

    def pre_model_load(self, cfg) -> None:
        """Refuse, before hours of loading, a setup the chosen mode cannot serve."""
        from plugins.epoch_eval.modes import MODES

        config = config_of(cfg)
        MODES[config.mode].refuse(config, cfg, Path.cwd())
        for d in [*config.include_path, *([config.task_data_dir] if config.task_data_dir else [])]:
            if not Path(d).is_dir():
                raise FileNotFoundError(f"epoch_eval: directory {d} (include_path / task_data_dir) does not exist")

    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        from plugins.epoch_eval.callback import EpochEvalCallback
        from plugins.epoch_eval.modes.same_node import score_from

        show_progress()  # again, now that the callback's modules (and their loggers) exist
        config = config_of(cfg)
        return [
            EpochEvalCallback(
                config,
                output_dir=trainer.args.output_dir,
                base_model=local_or_hub(str(cfg.base_model)),
                adapter=cfg.get("adapter"),
                lora_r=cfg.get("lora_r"),
                num_epochs=float(cfg.get("num_epochs") or 1),
                score_from=score_from(config, cfg, Path.cwd()),
                trainer=trainer,
            )
        ]
