"""The preflight plugin in a real `axolotl train`: it refuses before the datasets and the model load, and the
override lets the same run through, whose checkpoints then match the disk estimate."""

from __future__ import annotations

import re

from conftest import axolotl_train, smoke_recipe

PLUGIN = ["plugins.preflight.PreflightPlugin"]
MODEL_LOADING = "Loading weights"  # transformers' progress bar while the model's weights load
DATA_LOADING = "Loading raw datasets"  # Axolotl, before tokenizing


def test_missing_dataset_file_stops_the_run_before_anything_loads(tmp_path, tiny_llama):
    config = smoke_recipe(tmp_path, tiny_llama, tmp_path / "not-built.jsonl", plugins=PLUGIN)
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"datasets[0].path = {tmp_path / 'not-built.jsonl'}: file not found" in out
    assert "PreflightError: preflight: this run cannot finish" in out
    assert MODEL_LOADING not in out and DATA_LOADING not in out


def test_disk_budget_refuses_and_override_trains(tmp_path, tiny_llama, merged_jsonl):
    # two epoch checkpoints of the tiny fp32 model (weights + Adam moments) cannot fit a 1 MiB budget
    refused = tmp_path / "refused"
    refused.mkdir()
    config = smoke_recipe(refused, tiny_llama, merged_jsonl, plugins=PLUGIN, preflight={"disk_budget_gb": 1 / 1024})
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert re.search(r"disk / run \(peak\): needs [\d.]+ MiB, has 1\.0 MiB \(budget\)", out)
    assert "save_only_model: true" in out and "override: [disk]" in out
    assert MODEL_LOADING not in out and DATA_LOADING not in out
    assert not (refused / "out" / "model.safetensors").exists()

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    config = smoke_recipe(
        allowed, tiny_llama, merged_jsonl, plugins=PLUGIN, preflight={"disk_budget_gb": 1 / 1024, "override": ["disk"]}
    )
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "running despite `override`: disk / run (peak)" in out
    assert "GPU checks skipped: no GPU visible" in out  # harmless on CPU, and says what it skipped
    assert re.search(r"datasets\s+│.*│ ok\s+│ datasets\[0\]\.path: first 100 rows", out)
    assert out.index("preflight (detected") < out.index(DATA_LOADING) < out.index(MODEL_LOADING)
    # the per-save estimate (fp32 weights 4 B + Adam moments 8 B per parameter) against the real checkpoint
    per_save = float(re.search(r"disk / save\s+│\s+([\d.]+) MiB", out).group(1)) * 2**20
    checkpoints = sorted((allowed / "out").glob("checkpoint-*"))
    assert len(checkpoints) == 2
    actual = sum(f.stat().st_size for f in checkpoints[-1].iterdir())
    assert abs(actual - per_save) / actual < 0.10, (actual, per_save)
