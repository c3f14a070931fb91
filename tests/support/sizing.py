"""The 70B full fine-tune as the recipes set it up, on the config-only Llama-2-70B fixture, and `prep fit` on it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from prep.cli import main

FIXTURE_70B = Path(__file__).parents[1] / "fixtures" / "llama-2-70b-hf"


def full_ft(ds_json: Path, **over) -> dict:
    """The 70B full fine-tune as recipes/llama2-70b-merged.yml sets it up."""
    return {
        "base_model": str(FIXTURE_70B),
        "datasets": [],
        "sequence_len": 4096,
        "micro_batch_size": 1,
        "gradient_checkpointing": True,
        "attn_implementation": "flash_attention_2",
        "bf16": True,
        "deepspeed": str(ds_json),
        "num_epochs": 5,
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "output_dir": "out",
        **over,
    }


def zero3_json(tmp_path: Path, offload: bool) -> Path:
    zero = {"stage": 3, "stage3_gather_16bit_weights_on_model_save": True, "reduce_bucket_size": "auto"}
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    path = tmp_path / f"zero3{'_offload' if offload else ''}.json"
    path.write_text(json.dumps({"zero_optimization": zero, "bf16": {"enabled": "auto"}}))
    return path


def fit(tmp_path: Path, config: dict, *args: str):
    """`prep fit` of `config` written as a recipe in `tmp_path`."""
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(yaml.safe_dump(config))
    return CliRunner().invoke(main, ["fit", str(recipe), "--run-dir", str(tmp_path), *args])
