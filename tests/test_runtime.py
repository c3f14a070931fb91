"""The time model against measured and published figures, `prep fit --json`'s `time` member, the budget refusal
with the changes that fit, and `prep fit` on recipes that cannot run."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_preflight_estimate import FIXTURE_70B, full_ft, zero3_json

from prep.cli import main
from prep.sizing.estimate import trainable_params
from prep.sizing.gpus import GPUS
from prep.sizing.plan import plan_from_config
from prep.sizing.runtime import Workload, run_time
from prep.sizing.shape import load_shape
from prep.sizing.workload import ASSUMED_PACKING, packing_efficiency

# ../shared/notes/gpu-measurements.md, one H200: step time for one 4096-token sequence, micro batch 1
H200_7B_FULL_TOKENS_S = 8_290
H200_7B_MFU = 0.34
H200_70B_QLORA_TOKENS_S = 873
# Llama 2 paper (Touvron et al. 2023), Table 2: A100-80GB GPU-hours to pretrain the 70B on 2T tokens
LLAMA2_70B_GPU_HOURS = 1_720_320

BASE = {"datasets": [], "sequence_len": 4096, "micro_batch_size": 1, "gradient_checkpointing": True, "bf16": True}


@pytest.fixture(scope="module")
def llama7b(tmp_path_factory) -> Path:
    """Llama-2-7B's config.json values (meta-llama/Llama-2-7b-hf), no weights."""
    path = tmp_path_factory.mktemp("llama-2-7b")
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    }
    (path / "config.json").write_text(json.dumps(config))
    return path


def one_sequence_steps(tokens: float, context: float = 4096) -> Workload:
    """`tokens` in full 4096-token sequences, as the measurements ran them (random tokens, no packing)."""
    n = tokens / 4096
    return Workload(tokens, tokens, n, n, tokens, context, "test")


def test_reproduces_the_h200_full_fine_tune_of_the_7b_shape(llama7b):
    shape = load_shape(str(llama7b))
    plan = plan_from_config({**BASE, "base_model": str(llama7b), "optimizer": "adamw_torch_fused"}, Path("."))
    rt = run_time(plan, shape, one_sequence_steps(4096 * 100), GPUS["h200"], 1, 1, shape.params)
    tokens_s = 4096 / rt.seconds_per_step
    assert abs(tokens_s / H200_7B_FULL_TOKENS_S - 1) < 0.25, tokens_s
    assert abs(rt.mfu / H200_7B_MFU - 1) < 0.25, rt.mfu


def test_reproduces_the_h200_qlora_of_the_70b_shape():
    shape = load_shape(str(FIXTURE_70B))
    plan = plan_from_config(
        {
            **BASE,
            "base_model": str(FIXTURE_70B),
            "adapter": "qlora",
            "load_in_4bit": True,
            "lora_r": 64,
            "lora_target_linear": True,
            "optimizer": "paged_adamw_32bit",
        },
        Path("."),
    )
    rt = run_time(plan, shape, one_sequence_steps(4096 * 100), GPUS["h200"], 1, 1, trainable_params(plan, shape))
    tokens_s = 4096 / rt.seconds_per_step
    assert abs(tokens_s / H200_70B_QLORA_TOKENS_S - 1) < 0.25, tokens_s
    assert rt.step_parts["dequantization"] > 0  # its own term, not folded into the utilization


def test_reproduces_llama2_70b_pretraining_gpu_hours(tmp_path):
    # Not calibrated on: full training of the 70B shape, sharded (FSDP ~ ZeRO-3) over 2,048 A100-80GB, with
    # activation checkpointing, 4096-token sequences, 4 per micro batch (llm-foundry's 70B setup), 2T tokens.
    shape = load_shape(str(FIXTURE_70B))
    plan = plan_from_config(full_ft(zero3_json(tmp_path, offload=False), micro_batch_size=4), tmp_path)
    rt = run_time(plan, shape, one_sequence_steps(2e12), GPUS["a100-80gb"], 256, 8, shape.params)
    assert abs(rt.gpu_hours / (LLAMA2_70B_GPU_HOURS * plan.epochs) - 1) < 0.25, rt.gpu_hours / plan.epochs


def test_gradient_checkpointing_costs_one_more_forward_and_lora_skips_weight_gradients(llama7b):
    shape = load_shape(str(llama7b))
    full = plan_from_config({**BASE, "base_model": str(llama7b)}, Path("."))
    work = one_sequence_steps(4096 * 10, context=0)  # no attention: the 6P / 8P / 4P / 6P rule of thumb
    per = {}
    for name, plan in {
        "full": replace(full, gradient_checkpointing=False),
        "full+gc": full,
        "lora": replace(full, adapter="lora", gradient_checkpointing=False),
        "lora+gc": replace(full, adapter="lora"),
    }.items():
        per[name] = run_time(plan, shape, work, GPUS["a100-80gb"], 1, 1, 0).flops_per_token / shape.params
    assert per["full"] == pytest.approx(6, rel=0.03) and per["full+gc"] == pytest.approx(8, rel=0.03)
    assert per["lora"] == pytest.approx(4, rel=0.03) and per["lora+gc"] == pytest.approx(6, rel=0.03)


def test_packing_efficiency_of_known_lengths():
    assert packing_efficiency([100] * 8, 400) == 1.0  # four in a bin, two bins
    assert packing_efficiency([300, 300, 100, 100], 400) == 1.0  # best fit pairs 300 with 100
    assert packing_efficiency([300, 300, 300], 400) == 0.75


def fit(tmp_path: Path, config: dict, *args: str):
    recipe = tmp_path / "recipe.yml"
    recipe.write_text(yaml.safe_dump(config))
    return CliRunner().invoke(main, ["fit", str(recipe), "--run-dir", str(tmp_path), *args])


PLUGIN = {"plugins": ["plugins.preflight.PreflightPlugin"]}  # without it Axolotl would drop `preflight:`
A100_NODE = ("--gpu-type", "a100-80gb", "--gpus", "8", "--ram", "2048", "--disk", "4000")


def test_json_time_member(tmp_path):
    config = full_ft(zero3_json(tmp_path, offload=True), gradient_accumulation_steps=8, sample_packing=True)
    run = fit(tmp_path, config, *A100_NODE, "--tokens-per-epoch", "5e8", "--price-per-gpu-hour", "2", "--json")
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    t = out["time"]
    for key in ("tokens_per_epoch", "steps_per_epoch", "seconds_per_epoch", "total_seconds", "gpu_hours", "cost"):
        assert key in t
    assert t["tokens_per_epoch"] == 500_000_000
    sequences = 5e8 / (4096 * ASSUMED_PACKING)
    assert t["steps_per_epoch"] == math.ceil(sequences / (1 * 8 * 8))  # micro batch x grad accumulation x GPUs
    assert t["total_seconds"] == pytest.approx(5 * t["seconds_per_epoch"])
    assert t["gpu_hours"] == pytest.approx(t["total_seconds"] * 8 / 3600)
    assert t["cost"] == pytest.approx(2 * t["gpu_hours"])
    assert t["step_cpu_adam_seconds"] > 0 and t["step_pcie_(gradients,_weights)_seconds"] > 0  # offload terms
    assert out["memory"]["gpu_total_bytes"] > 0 and out["disk"]["per_save_bytes"] > 0
    no_price = json.loads(fit(tmp_path, config, *A100_NODE, "--tokens-per-epoch", "5e8", "--json").stdout)
    assert "cost" not in no_price["time"]


def test_over_max_days_is_refused_with_the_changes_that_fit(tmp_path):
    base = full_ft(zero3_json(tmp_path, offload=True), gradient_accumulation_steps=8, sample_packing=True)
    timed = json.loads(fit(tmp_path, base, *A100_NODE, "--tokens-per-epoch", "5e8", "--json").stdout)["time"]
    days = timed["total_seconds"] / 86400
    config = {**base, **PLUGIN, "preflight": {"max_days": round(days * 0.5, 3)}}
    run = fit(tmp_path, config, *A100_NODE, "--tokens-per-epoch", "5e8")
    assert run.exit_code == 1, run.output
    assert "time / run: needs" in run.output and "override: [time]" in run.output
    assert "num_epochs: 2" in run.output  # 5 epochs in twice the budget: 2 fit
    assert "nodes of 8 GPUs" in run.output
    assert "a token budget of" in run.output and "tokens per epoch for the mixture" in run.output
    refused = fit(tmp_path, config, *A100_NODE, "--tokens-per-epoch", "5e8", "--json")
    assert refused.exit_code == 1  # and scripts still get the figures, with the refusal
    out = json.loads(refused.stdout)
    assert out["time"]["total_seconds"] == pytest.approx(timed["total_seconds"]) and "num_epochs: 2" in out["error"]
    hours = {**base, **PLUGIN, "preflight": {"max_gpu_hours": round(timed["gpu_hours"] * 2)}}
    assert fit(tmp_path, hours, *A100_NODE, "--tokens-per-epoch", "5e8").exit_code == 0


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("num_epochs", -1, "num_epochs must be > 0, got -1"),
        ("num_epochs", 0, "num_epochs must be > 0, got 0"),
        ("sequence_len", -4096, "sequence_len must be >= 1"),
        ("micro_batch_size", 0, "micro_batch_size must be >= 1, got 0"),
        ("save_total_limit", -2, "save_total_limit must be >= 1"),
        ("lora_r", 0, "lora_r must be >= 1, got 0"),
        ("gradient_accumulation_steps", 2.5, "gradient_accumulation_steps must be a whole number"),
        ("num_epochs", "five", "num_epochs must be a number, got 'five'"),
        ("val_set_size", -0.1, "val_set_size must be >= 0"),
    ],
)
def test_values_that_cannot_run_are_refused_naming_key_and_file(tmp_path, key, value, says):
    run = fit(tmp_path, {**full_ft(zero3_json(tmp_path, True)), key: value}, *A100_NODE)
    assert run.exit_code == 1
    assert f"{tmp_path / 'recipe.yml'}: {says}" in run.output
    assert "Traceback" not in run.output and len(run.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content, says",
    [
        (b"base_model: x\nnum_epochs: 1\nnum_epochs: 5\n", ":3:1: invalid YAML: duplicate key 'num_epochs'"),
        (b"base_model: [x\n", "invalid YAML"),
        (b"base_model: \xff\xfe x\n", "not UTF-8 (byte 0xff)"),
        (b"- a\n- b\n", "a recipe is a YAML mapping"),
    ],
)
def test_broken_recipe_files_are_one_line(tmp_path, content, says):
    recipe = tmp_path / "bad.yml"
    recipe.write_bytes(content)
    run = CliRunner().invoke(main, ["fit", str(recipe), *A100_NODE])
    assert run.exit_code == 1
    assert f"{recipe}" in run.output and says in run.output, run.output
    assert "Traceback" not in run.output and len(run.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args", [("--gpus", "0"), ("--nodes", "0"), ("--price-per-gpu-hour", "-1"), ("--tokens-per-epoch", "0")]
)
def test_hardware_options_that_cannot_run_are_refused(tmp_path, args):
    run = fit(tmp_path, full_ft(zero3_json(tmp_path, True)), *args)
    assert run.exit_code == 2 and args[0] in run.output and "Traceback" not in run.output


def test_keys_axolotl_would_drop_are_refused(tmp_path):
    config = {**full_ft(zero3_json(tmp_path, True)), "num_epoch": 3, "prefligh": {"max_days": 1}}
    run = fit(tmp_path, config, *A100_NODE)
    assert run.exit_code == 1
    assert "recipe keys: needs num_epoch (did you mean num_epochs?), prefligh" in run.output
    assert "override: [recipe_keys]" in run.output
