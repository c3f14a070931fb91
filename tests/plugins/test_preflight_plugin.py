"""The preflight plugin in a real `axolotl train`: it refuses before the datasets and the model load (a missing
dataset, a disk budget, a time budget, keys Axolotl would drop), and the override lets the same run through,
whose checkpoints then match the disk estimate."""

from __future__ import annotations

import re

import pytest
from conftest import axolotl_train, smoke_recipe

PLUGIN = ["plugins.preflight.PreflightPlugin"]
MODEL_LOADING = "Loading weights"  # transformers' progress bar while the model's weights load
DATA_LOADING = "Loading raw datasets"  # Axolotl, before tokenizing
NO_EVAL = {"epoch_eval": None}  # the smoke recipe's eval block, unknown without its plugin


def preflight_recipe(workdir, model, data, **overrides):
    """The smoke recipe with only the preflight plugin, in `workdir` (made here)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return smoke_recipe(workdir, model, data, plugins=PLUGIN, **NO_EVAL, **overrides)


def loaded_nothing(out: str, smoke_run) -> bool:
    """Neither the datasets nor the model loaded: the lines a run prints when they do (which the shared smoke
    run's log shows, so a renamed line cannot make this pass) are absent."""
    return all(line in smoke_run.log and line not in out for line in (MODEL_LOADING, DATA_LOADING))


@pytest.mark.e2e
def test_missing_dataset_file_stops_the_run_before_anything_loads(tmp_path, tiny_llama, smoke_run):
    config = preflight_recipe(tmp_path, tiny_llama, tmp_path / "not-built.jsonl")
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"datasets[0].path: {tmp_path / 'not-built.jsonl'}: no such file or directory" in out
    assert "PreflightError: preflight: this run cannot finish" in out
    assert loaded_nothing(out, smoke_run)


@pytest.mark.e2e
def test_disk_budget_refuses_and_override_trains(tmp_path, tiny_llama, merged_jsonl, smoke_run):
    # two epoch checkpoints of the tiny fp32 model (weights + Adam moments) cannot fit a 1 MiB budget
    refused = tmp_path / "refused"
    config = preflight_recipe(refused, tiny_llama, merged_jsonl, preflight={"disk_budget_gb": 1 / 1024})
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
    assert re.search(r"recipe keys\s+│.*│ ok\s+│ every top-level key is known to Axolotl", out)
    assert re.search(r"datasets\s+│.*│ ok\s+│ datasets\[0\]\.path: first 100 rows", out)
    assert out.index("preflight (detected") < out.index(DATA_LOADING) < out.index(MODEL_LOADING)
    # the per-save estimate (fp32 weights 4 B + Adam moments 8 B per parameter) against the real checkpoint
    per_save = float(re.search(r"disk / save\s+│\s+([\d.]+) MiB", out).group(1)) * 2**20
    checkpoints = sorted(smoke_run.out.glob("checkpoint-*"))
    assert len(checkpoints) == 2
    actual = sum(f.stat().st_size for f in checkpoints[-1].iterdir())
    assert abs(actual - per_save) / actual < 0.10, (actual, per_save)


def timed_seconds(recipe) -> float:
    """What `prep fit` says the recipe takes on one A100-80GB: the plugin uses the same arithmetic."""
    import json

    from click.testing import CliRunner

    from prep.cli import main

    run = CliRunner().invoke(main, ["fit", str(recipe), "--gpu-type", "a100-80gb", "--gpus", "1", "--json"])
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)["time"]["total_seconds"]


@pytest.mark.e2e
def test_over_max_days_is_refused_before_tokenizing_and_override_trains(tmp_path, tiny_llama, merged_jsonl, smoke_run):
    # no GPU here: the plugin times the run on the GPU `gpu_type` names, as it would on that GPU
    probe = tmp_path / "probe"
    timing = {"gpu_type": "a100-80gb"}
    seconds = timed_seconds(preflight_recipe(probe, tiny_llama, merged_jsonl, preflight=timing))
    budget = {**timing, "max_days": seconds * 0.6 / 86400}  # 2 epochs in 0.6 of their time: 1 fits

    refused = tmp_path / "refused"
    run = axolotl_train(preflight_recipe(refused, tiny_llama, merged_jsonl, preflight=budget))
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "time / run: needs" in out and "override: [time]" in out
    assert "num_epochs: 1" in out and "nodes of 1 GPUs" in out
    assert "a token budget of" in out and "tokens per epoch for the mixture" in out
    assert loaded_nothing(out, smoke_run)

    allowed = tmp_path / "allowed"
    config = preflight_recipe(
        allowed,
        tiny_llama,
        merged_jsonl,
        preflight={**budget, "max_days": seconds * 0.3 / 86400, "override": ["time"]},
        num_epochs=1,
    )
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "running despite `override`: time / run" in out
    assert re.search(r"tokens / epoch\s+│\s+[\d,]+", out)
    assert sorted((allowed / "out").glob("checkpoint-*"))


@pytest.mark.e2e
def test_keys_axolotl_drops_are_refused_before_anything_loads(tmp_path, tiny_llama, merged_jsonl, smoke_run):
    config = preflight_recipe(tmp_path, tiny_llama, merged_jsonl, num_epoch=3, prefligh={"max_days": 1})
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "recipe keys: needs num_epoch (did you mean num_epochs?), prefligh (did you mean preflight?)" in out
    assert "override: [recipe_keys]" in out
    assert loaded_nothing(out, smoke_run)


@pytest.mark.e2e
def test_a_misspelt_key_inside_the_preflight_block_is_refused(tmp_path, tiny_llama, merged_jsonl, smoke_run):
    config = preflight_recipe(tmp_path, tiny_llama, merged_jsonl, preflight={"max_day": 1})
    run = axolotl_train(config)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "max_day" in out and "Extra inputs are not permitted" in out
    assert loaded_nothing(out, smoke_run)
