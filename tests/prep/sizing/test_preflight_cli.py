"""`prep fit`: size hardware for a recipe without a GPU; refusals say what to change."""

from __future__ import annotations

import json

import yaml
from conftest import REPO
from support.sizing import FIXTURE_70B, fit, full_ft, zero3_json

A100_NODE = ("--gpus", "8", "--gpu-mem", "80", "--ram", "2048", "--disk", "4000")


def test_70b_without_offload_on_one_node_is_refused_with_the_alternatives(tmp_path):
    run = fit(tmp_path, full_ft(zero3_json(tmp_path, offload=False)), *A100_NODE, "--nodes", "1")
    assert run.exit_code == 1, run.output
    assert "GPU memory / GPU: needs 154.6 GiB" in run.output
    # computed alternatives: ZeRO-3 over 24 GPUs, or optimizer offload on this node, or QLoRA
    assert "3 nodes of 8 GPUs (24 GPUs" in run.output
    assert "optimizer offload" in run.output and "QLoRA" in run.output
    assert "override: [gpu_memory]" in run.output


def test_70b_without_offload_fits_three_nodes(tmp_path):
    run = fit(tmp_path, full_ft(zero3_json(tmp_path, offload=False)), *A100_NODE, "--nodes", "3")
    assert run.exit_code == 0, run.output
    assert "ZeRO-3 over 24 process(es)" in run.output


def test_70b_with_offload_fits_one_node_with_2tb_ram_not_1tb(tmp_path):
    config = full_ft(zero3_json(tmp_path, offload=True))
    run = fit(tmp_path, config, *A100_NODE)
    assert run.exit_code == 0, run.output
    assert "26.1 GiB" in run.output and "1.51 TiB" in run.output  # per GPU; host RAM per node
    small = fit(tmp_path, config, "--gpus", "8", "--gpu-mem", "80", "--ram", "1024", "--disk", "4000")
    assert small.exit_code == 1
    assert "host RAM / node: needs 1.51 TiB, has 1.00 TiB" in small.output
    assert "2 nodes" in small.output and "host_buffer_factor: 1.0" in small.output


def test_disk_refusal_offers_a_limit_and_save_only_model(tmp_path):
    # 5 epoch saves of 899 GiB with save_total_limit 2 peak at 3 checkpoints = 2.63 TiB
    run = fit(
        tmp_path,
        full_ft(zero3_json(tmp_path, offload=True)),
        "--gpus",
        "8",
        "--gpu-mem",
        "80",
        "--ram",
        "2048",
        "--disk",
        "2000",
    )
    assert run.exit_code == 1
    assert "disk / run (peak): needs 2.63 TiB, has 1.95 TiB" in run.output
    assert "save_total_limit: 1" in run.output and "save_only_model: true (128.5 GiB/save" in run.output


def test_without_gpus_the_gpu_check_is_skipped_not_passed(tmp_path):
    run = fit(tmp_path, full_ft(zero3_json(tmp_path, offload=True)), "--ram", "2048", "--disk", "4000")
    assert run.exit_code == 0, run.output
    assert "skip" in run.output and "GPU checks skipped" in run.output


def test_bad_inputs_name_the_key_or_file(tmp_path):
    typo = fit(tmp_path, {**full_ft(zero3_json(tmp_path, True)), "preflight": {"gpu_headrom": 0.2}}, *A100_NODE)
    assert typo.exit_code == 1 and "gpu_headrom" in typo.output and "Extra inputs" in typo.output
    missing = fit(tmp_path, full_ft(tmp_path / "nope.json"), *A100_NODE)
    assert missing.exit_code == 1 and "deepspeed:" in missing.output and "nope.json not found" in missing.output
    bad_stage = tmp_path / "bad.json"
    bad_stage.write_text(json.dumps({"zero_optimization": {"stage": "auto"}}))
    bad = fit(tmp_path, full_ft(bad_stage), *A100_NODE)
    assert bad.exit_code == 1 and "zero_optimization.stage must be 0-3, got 'auto'" in bad.output


def test_check_inputs_reports_a_config_only_model_dir(tmp_path):
    run = fit(tmp_path, full_ft(zero3_json(tmp_path, True)), *A100_NODE, "--check-inputs")
    assert run.exit_code == 1
    assert f"base_model {FIXTURE_70B} has a config.json but no weight files" in run.output
    assert "the config has no datasets" in run.output


def test_planning_for_other_hardware_does_not_check_this_machines_ram_and_disk(tmp_path):
    # Issue 22, item 9: --ram/--disk defaulted to this machine (a 24 GiB CI box), so sizing an 8 x A100 node
    # failed its host RAM and disk checks unless both were given
    config = full_ft(zero3_json(tmp_path, offload=True))
    run = fit(tmp_path, config, "--gpu-type", "a100-80gb", "--gpus", "8")
    assert run.exit_code == 0, run.output
    out = " ".join(run.output.split())
    assert "host RAM / node │ 1.51 TiB │ not given │ skip" in out and "give --ram GiB" in out
    assert "give --disk GiB" in out and "RAM not given, disk not given" in out
    given = fit(tmp_path, config, "--gpu-type", "a100-80gb", "--gpus", "8", "--ram", "1024", "--disk", "4000")
    assert given.exit_code == 1 and "host RAM / node: needs 1.51 TiB, has 1.00 TiB" in given.output


def test_a_token_count_is_a_total_not_a_trainable_count(tmp_path):
    run = fit(tmp_path, full_ft(zero3_json(tmp_path, True), sample_packing=True), *A100_NODE, "--gpu-type",
              "a100-80gb", "--tokens-per-epoch", "645000000")  # fmt: skip
    out = " ".join(run.output.split())
    assert "645,000,000 │ │ info │ a total (the trainable share not known)" in out
    assert "645,000,000 trainable" not in out
    as_json = fit(tmp_path, full_ft(zero3_json(tmp_path, True), sample_packing=True), *A100_NODE, "--gpu-type",
                  "a100-80gb", "--tokens-per-epoch", "645000000", "--json")  # fmt: skip
    time = json.loads(as_json.stdout)["time"]
    assert time["tokens_per_epoch"] == 645_000_000 and time["trainable_tokens_per_epoch"] is None


def test_offline_without_base_model_says_to_give_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {**full_ft(zero3_json(tmp_path, True)), "base_model": "meta-llama/Llama-2-70b-hf"}
    run = fit(tmp_path, config, *A100_NODE)
    assert run.exit_code == 1 and "Traceback" not in run.output
    assert len(run.output.strip().splitlines()) == 1, run.output
    assert "meta-llama/Llama-2-70b-hf" in run.output and "give --base-model DIR" in run.output
    local = fit(tmp_path, config, *A100_NODE, "--base-model", str(FIXTURE_70B))
    assert local.exit_code == 0, local.output


def shipped(name: str) -> dict:
    cfg = yaml.safe_load((REPO / "recipes" / name).read_text())
    cfg["base_model"] = str(FIXTURE_70B)
    return cfg


def test_same_node_eval_memory_is_stated_and_a_plan_that_cannot_fit_it_is_refused(tmp_path):
    """The single-node recipe's eval (the checkpoint in bf16 over 8 GPUs, beside ZeRO-3's resident state) fits;
    a QLoRA run told to score its checkpoint needs a second 70B copy on its one GPU, and is refused."""
    full = shipped("llama2-70b-merged.yml")
    full["deepspeed"] = str(REPO / full["deepspeed"])
    run = fit(tmp_path, full, *A100_NODE, "--json")
    assert run.exit_code == 0, run.output
    row = next(f for f in json.loads(run.stdout)["findings"] if f["label"] == "eval memory / GPU")
    assert row["status"] == "ok" and row["need"] == "19.1 GiB" and row["have"] == "53.0 GiB free beside training"
    assert "score_from checkpoint: the checkpoint in bf16 over 8 GPU(s) (16.1 GiB each)" in row["note"]

    qlora = shipped("llama2-70b-merged-qlora.yml")
    assert fit(tmp_path, qlora, "--gpus", "1", "--gpu-mem", "80", "--ram", "256", "--disk", "100").exit_code == 0
    qlora["epoch_eval"]["score_from"] = "checkpoint"
    run = fit(tmp_path, qlora, "--gpus", "1", "--gpu-mem", "80", "--ram", "256", "--disk", "100")
    assert run.exit_code == 1
    assert "eval memory / GPU: needs 131.5 GiB, has 23.8 GiB free beside training" in run.output
    assert "score_from memory (hf backend), which needs no second copy" in run.output
    assert "override: [eval_memory]" in run.output

    # GPUs too small for training itself: nothing free, said in units (it printed '-4978339430 B free')
    run = fit(tmp_path, full, "--gpus", "8", "--gpu-mem", "16", "--ram", "2048", "--disk", "4000", "--json")
    row = next(f for f in json.loads(run.stdout)["findings"] if f["label"] == "eval memory / GPU")
    assert row["status"] == "fail" and row["have"] == "0 B free beside training", row
    assert "4.6 GiB more than the GPU has: nothing is left" in row["note"], row["note"]


def test_a_queue_run_with_no_eval_gpus_is_warned(tmp_path):
    full = shipped("llama2-70b-merged.yml")
    full["deepspeed"] = str(REPO / full["deepspeed"])
    full["epoch_eval"] = {**full["epoch_eval"], "mode": "queue", "max_pending_checkpoints": 1}
    run = fit(tmp_path, full, *A100_NODE, "--json")
    assert run.exit_code == 0, run.output  # a warning, not a refusal: the watcher may run on GPUs elsewhere
    row = next(f for f in json.loads(run.stdout)["findings"] if f["label"] == "eval GPUs")
    assert row["status"] == "warn" and "training stops at the end of epoch 2" in row["note"]
    assert "use mode same_node" in row["note"]
    run = fit(tmp_path, full, *A100_NODE, "--eval-gpus", "8", "--json")
    row = next(f for f in json.loads(run.stdout)["findings"] if f["label"] == "eval GPUs")
    assert row["status"] == "info" and "runs on 8 GPU(s) beside training" in row["note"]
