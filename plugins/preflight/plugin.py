"""The Axolotl plugin: refuses a run that cannot finish (GPU memory, host RAM, disk, inputs, time budget, unknown
recipe keys) before anything loads. The arithmetic is prep.sizing's, as behind `prep fit`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin
from axolotl.utils.dict import DictDefault
from axolotl.utils.logging import get_logger

from prep.sizing.checks import console, run_preflight
from prep.sizing.config import PreflightConfig
from prep.sizing.machine import detect
from prep.sizing.recipe import read_recipe
from prep.sizing.timing import Timing

LOG = get_logger(__name__)


class PreflightPlugin(BasePlugin):
    """Runs in `load_datasets`, the first hook after the config is resolved: before tokenizing and model loading.

    `pre_model_load` covers entry points that skip that hook (the Python API's `train()`, `axolotl evaluate`).
    Every rank computes the same verdict, so all refuse together; only the main process prints the table.
    """

    def __init__(self) -> None:
        super().__init__()
        self._checked = False

    def get_input_args(self) -> str:
        return "plugins.preflight.args.PreflightArgs"

    def load_datasets(self, cfg: DictDefault, preprocess: bool = False) -> None:
        # `axolotl preprocess` needs neither GPUs nor checkpoint space: check only its inputs there
        self._check(cfg, fit=not preprocess)
        return None

    def pre_model_load(self, cfg: DictDefault) -> None:
        if not self._checked:
            self._check(cfg, fit=True)

    def _check(self, cfg: DictDefault, fit: bool) -> None:
        pcfg = PreflightConfig.model_validate(cfg.get("preflight") or {})
        self._checked = True
        if not pcfg.enabled:
            LOG.warning("preflight: disabled by `preflight: {enabled: false}`; nothing checked")
            return
        # Axolotl's validated config has dropped the keys it does not know: read the recipe as written
        source = cfg.get("axolotl_config_path")
        raw: dict[str, Any] | None = read_recipe(Path(source)) if source and Path(source).is_file() else None
        run_dir = Path.cwd()
        machine = detect(run_dir / str(cfg.get("output_dir") or "."))
        main = int(os.environ.get("RANK", "0")) == 0 and int(os.environ.get("LOCAL_RANK", "0")) == 0
        table = console(sys.stdout) if main else None  # stdout: in order with Axolotl's log lines
        report = run_preflight(
            cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg),
            run_dir,
            pcfg,
            machine,
            fit=fit,
            on_cpu=machine.gpu_mem is None,
            console=table,
            timing=Timing() if fit else None,
            raw=raw,
            where=str(source or "the recipe"),
        )
        for f in report.findings:
            if f.status == "fail":
                LOG.warning("preflight: running despite `override`: %s needs %s, has %s", f.label, f.need, f.have)
