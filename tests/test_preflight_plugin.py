"""The preflight plugin in a real `axolotl train`: it refuses before the datasets and the model load, and the
override lets the same run through, whose checkpoints then match the disk estimate."""

from __future__ import annotations

import re

import pytest
from conftest import axolotl_train, smoke_recipe

PLUGIN = ["plugins.preflight.PreflightPlugin"]
MODEL_LOADING = "Loading weights"  # transformers' progress bar while the model's weights load
DATA_LOADING = "Loading raw datasets"  # Axolotl, before tokenizing


def loaded_nothing(out: str, smoke_run) -> bool:
    """Neither the datasets nor the model loaded: the lines a run prints when they do (which the shared smoke
    run's log shows, so a renamed line cannot make this pass) are absent."""
    return all(line in smoke_run.log and line not in out for line in (MODEL_LOADING, DATA_LOADING))


@pytest.mark.e2e
def test_missing_dataset_file_stops_the_run_before_anything_loads(tmp_path, tiny_llama, smoke_run):
    config = smoke_recipe(tmp_path, tiny_llama, tmp_path / "not-built.jsonl", plugins=PLUGIN)
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"datasets[0].path = {tmp_path / 'not-built.jsonl'}: file not found" in out
    assert "PreflightError: preflight: this run cannot finish" in out
    assert loaded_nothing(out, smoke_run)


@pytest.mark.e2e
def test_disk_budget_refuses_and_override_trains(tmp_path, tiny_llama, merged_jsonl, smoke_run):
    # two epoch checkpoints of the tiny fp32 model (weights + Adam moments) cannot fit a 1 MiB budget
    refused = tmp_path / "refused"
    refused.mkdir()
    config = smoke_recipe(refused, tiny_llama, merged_jsonl, plugins=PLUGIN, preflight={"disk_budget_gb": 1 / 1024})
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert re.search(r"disk / run \(peak\): needs [\d.]+ MiB, has 1\.0 MiB \(budget\)", out)
    assert "save_only_model: true" in out and "override: [disk]" in out
    assert loaded_nothing(out, smoke_run)
    assert not (refused / "out" / "model.safetensors").exists()

    # the shared smoke run has the same budget with `override: [disk]`: it ran
    out = smoke_run.log
    assert "running despite `override`: disk / run (peak)" in out
    assert "GPU checks skipped: no GPU visible" in out  # harmless on CPU, and says what it skipped
    assert re.search(r"datasets\s+│.*│ ok\s+│ datasets\[0\]\.path: first 100 rows", out)
    assert out.index("preflight (detected") < out.index(DATA_LOADING) < out.index(MODEL_LOADING)
    # the per-save estimate (fp32 weights 4 B + Adam moments 8 B per parameter) against the real checkpoint
    per_save = float(re.search(r"disk / save\s+│\s+([\d.]+) MiB", out).group(1)) * 2**20
    checkpoints = sorted(smoke_run.out.glob("checkpoint-*"))
    assert len(checkpoints) == 2
    actual = sum(f.stat().st_size for f in checkpoints[-1].iterdir())
    assert abs(actual - per_save) / actual < 0.10, (actual, per_save)
