"""Preflight arithmetic against published figures: the ZeRO paper, DeepSpeed's estimator, QLoRA, Llama-2-70B."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from support.sizing import FIXTURE_70B, full_ft, zero3_json

from prep.sizing.config import PreflightConfig
from prep.sizing.estimate import DEEPSPEED_MIXED, ZERO_PAPER, GiB, estimate, model_states
from prep.sizing.plan import Sharding, plan_from_config
from prep.sizing.shape import load_shape


@pytest.fixture(scope="module")
def llama70b():
    return load_shape(str(FIXTURE_70B))


def test_llama2_70b_parameter_count_from_its_config(llama70b):
    c = json.loads((FIXTURE_70B / "config.json").read_text())
    h, i, v, n = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    kv = h // c["num_attention_heads"] * c["num_key_value_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i + 2 * h  # q, o; k, v (GQA); gate, up, down; two RMSNorms
    assert llama70b.params == n * per_layer + 2 * v * h + h == 68_976_648_192  # untied embeddings, final norm
    assert round(llama70b.params / 1e9, 2) == 68.98
    assert llama70b.largest_layer == v * h  # the embedding (and lm_head): what ZeRO-3 gathers at most at once


@pytest.mark.parametrize("stage, published_gb", [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(stage, published_gb):
    # Rajbhandari et al. 2020, arXiv:1910.02054, Figure 1: 7.5B parameters, N_d = 64, K = 12:
    # baseline 120 GB, P_os 31.4 GB, P_os+g 16.6 GB, P_os+g+p 1.9 GB per device.
    states = model_states(7.5e9, ZERO_PAPER, Sharding(stage=stage), dp=64)
    assert round(states.gpu / 1e9, 1) == published_gb
    assert states.host == 0


# Hugging Face Transformers docs, DeepSpeed guide, "Memory requirements": DeepSpeed's
# estimate_zero3_model_states_mem_needs_all_live for bigscience/T0_3B ("2783M total params, 65M largest layer
# params"), printed in GiB:   per CPU | per GPU | options
#   1 GPU:  70.00 | 0.25 | offload_param=cpu, offload_optimizer=cpu
#           62.23 | 5.43 | offload_param=none, offload_optimizer=cpu
#            (n/a) | 46.91 | no offload
#   2 GPUs: 62.23 | 2.84 | offload_optimizer=cpu;   (n/a) | 23.58 | no offload
@pytest.mark.parametrize(
    "gpus, opt, param, cpu_gib, gpu_gib",
    [
        (1, True, True, 70.00, 0.25),
        (1, True, False, 62.23, 5.43),
        (1, False, False, 0.0, 46.91),
        (2, True, False, 62.23, 2.84),
        (2, False, False, 0.0, 23.58),
    ],
)
def test_deepspeed_zero3_estimator_figures(gpus, opt, param, cpu_gib, gpu_gib):
    params, largest = 2783.5e6, 65.5e6  # the printed figures are truncated to whole millions
    states = model_states(
        params, DEEPSPEED_MIXED, Sharding(stage=3, offload_optimizer=opt, offload_param=param, deepspeed=True), dp=gpus
    )
    assert states.gpu / GiB + 4 * largest / GiB == pytest.approx(gpu_gib, abs=0.05)
    host = states.host * gpus * PreflightConfig().host_buffer_factor  # per node: every local rank's offload
    assert host / GiB == pytest.approx(cpu_gib, abs=0.05)


def test_70b_zero3_checkpoint_is_12_bytes_per_parameter_plus_the_16bit_model(tmp_path, llama70b):
    # Issue 7: "a ZeRO-3 checkpoint with optimizer state is about 12 bytes per parameter, about 0.8 TB for 70B"
    # (fp32 master weights + Adam momentum + variance); gathering 16-bit weights at save adds 2 B/parameter.
    plan = plan_from_config(full_ft(zero3_json(tmp_path, offload=True)), tmp_path)
    est = estimate(plan, llama70b, PreflightConfig(), dp=8, gpus_per_node=8)
    assert est.disk_per_save - est.disk_model_only == 12 * llama70b.params
    assert round((est.disk_per_save - est.disk_model_only) / 1e12, 2) == 0.83
    assert est.disk_model_only == 2 * llama70b.params
    # 5 epoch saves, save_total_limit 2: three checkpoints exist while the oldest is rotated out
    assert est.disk_run() == 3 * est.disk_per_save


def test_70b_on_8_a100_needs_optimizer_offload(tmp_path, llama70b):
    cfg = PreflightConfig()
    usable = 80 * GiB * (1 - cfg.gpu_headroom)
    plain = estimate(plan_from_config(full_ft(zero3_json(tmp_path, False)), tmp_path), llama70b, cfg, 8, 8)
    # DeepSpeed's 18 B/parameter (2 bf16 weight + 4 fp32 grad + 12 Adam) over 8 GPUs
    assert plain.gpu["weights"] + plain.gpu["gradients"] + plain.gpu["optimizer"] == 18 * llama70b.params / 8
    assert plain.gpu_total > usable
    offload = estimate(plan_from_config(full_ft(zero3_json(tmp_path, True)), tmp_path), llama70b, cfg, 8, 8)
    assert offload.gpu["gradients"] == offload.gpu["optimizer"] == 0
    assert offload.gpu_total < usable
    # host: 16 B/parameter (fp32 grads + Adam) per node, times DeepSpeed's 1.5 margin
    assert offload.host_per_node == 16 * llama70b.params * 1.5
    # checkpointed activations: one 4096 x 8192 bf16 hidden state per layer (Korthikanti et al. 2022, 2sbhL)
    assert offload.gpu["activations"] > 2 * 4096 * 8192 * 80


def write_llama(tmp_path: Path, **values) -> Path:
    cfg = json.loads((FIXTURE_70B / "config.json").read_text()) | values
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return tmp_path


def qlora(base: Path, seq: int) -> dict:
    return {
        "base_model": str(base),
        "datasets": [],
        "adapter": "qlora",
        "load_in_4bit": True,
        "lora_r": 64,
        "lora_target_linear": True,
        "optimizer": "paged_adamw_32bit",
        "sequence_len": seq,
        "micro_batch_size": 1,
        "gradient_checkpointing": True,
        "bf16": True,
        "output_dir": "out",
    }


def test_qlora_65b_fits_one_48gb_gpu_and_full_16bit_needs_over_780gb(tmp_path):
    # Dettmers et al. 2023 (arXiv:2305.14314), abstract and sec. 1: QLoRA "reduces the average memory
    # requirements of finetuning a 65B parameter model from >780GB of GPU memory to <48GB"; r=64 on all linear
    # layers (appendix B). LLaMA-65B: dim 8192, 64 heads, 80 layers (Touvron et al. 2023, table 2), FFN 22016.
    base = write_llama(tmp_path, intermediate_size=22016, num_key_value_heads=64)
    shape = load_shape(str(base))
    assert 65.2e9 < shape.params < 65.3e9
    cfg = PreflightConfig()
    est = estimate(plan_from_config(qlora(base, 512), tmp_path), shape, cfg, 1, 1)
    assert est.gpu_total < 48 * GiB
    full = plan_from_config(
        {**qlora(base, 512), "adapter": None, "load_in_4bit": False, "deepspeed": str(zero3_json(tmp_path, False))},
        tmp_path,
    )
    assert estimate(full, shape, cfg, 1, 1).gpu_total > 780e9


def test_qlora_70b_recipe_fits_one_80gb_gpu(tmp_path, llama70b):
    est = estimate(plan_from_config(qlora(FIXTURE_70B, 4096), tmp_path), llama70b, PreflightConfig(), 1, 1)
    assert est.trainable == 828_375_040  # r=64 x (in+out) over q,k,v,o,gate,up,down in 80 layers
    assert est.gpu_total < 80 * GiB * (1 - PreflightConfig().gpu_headroom)
    # NF4 + double quantization, 4.127 bits per quantized weight (QLoRA sec. 3): ~35 GB of 4-bit base
    assert 35e9 < est.gpu["weights"] - est.trainable * 4 < 37e9


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("*.yml")), ids=lambda p: p.name)
def test_disk_counts_the_checkpoints_epoch_eval_holds_unscored(tmp_path, llama70b, recipe):
    """prep reads the recipe's epoch_eval block itself (it cannot import plugins): it must agree with the
    plugin on how many checkpoints are held, and the run's peak grows by that many saves."""
    from plugins.epoch_eval.args import EpochEvalConfig
    from prep.sizing.plan import held_checkpoints

    cfg = yaml.safe_load(recipe.read_text())
    block = cfg.get("epoch_eval")
    expected = EpochEvalConfig.model_validate(block).held_checkpoints() if block else 0
    assert held_checkpoints(cfg) == expected
    for mode, held in (("queue", 2), ("slurm", 2), ("same_node", 0)):
        assert held_checkpoints({"epoch_eval": {"mode": mode}}) == held
        assert EpochEvalConfig.model_validate({"mode": mode}).held_checkpoints() == held

    base = full_ft(zero3_json(tmp_path, offload=True))
    plain = estimate(plan_from_config(base, tmp_path), llama70b, PreflightConfig(), dp=8, gpus_per_node=8)
    queued = {**base, "epoch_eval": {"mode": "queue", "max_pending_checkpoints": 1}}
    held = estimate(plan_from_config(queued, tmp_path), llama70b, PreflightConfig(), dp=8, gpus_per_node=8)
    assert held.held_checkpoints == 1
    assert held.disk_run() == plain.disk_run() + plain.disk_per_save == 4 * plain.disk_per_save


FSDP_OFFLOAD_FORMS = [
    {"fsdp": "full_shard auto_wrap offload"},  # the Trainer's string
    {"fsdp": ["full_shard", "auto_wrap", "offload"]},  # its list
    {"fsdp": ["full_shard", "auto_wrap"], "fsdp_config": {"fsdp_offload_params": True}},  # accelerate's prefixed keys
    {"fsdp_config": {"offload_params": True, "sharding_strategy": "FULL_SHARD"}},  # Axolotl's fsdp_config
]


def fsdp_recipe(**over) -> dict:
    base = {k: v for k, v in full_ft(Path("unused.json")).items() if k != "deepspeed"}
    return {**base, "sample_packing": True, **over}


@pytest.mark.parametrize("form", FSDP_OFFLOAD_FORMS, ids=["string", "list", "fsdp_config-prefixed", "fsdp_config"])
def test_every_fsdp_form_keeps_its_offload(tmp_path, llama70b, form):
    # Issue 22: `fsdp: "full_shard auto_wrap offload"` lost its offload (0 GiB host, 42.1 GiB per GPU on 2 x 8)
    est = estimate(plan_from_config(fsdp_recipe(**form), tmp_path), llama70b, PreflightConfig(), 16, 8)
    assert est.gpu_total / GiB == pytest.approx(10.0, abs=0.05)
    assert est.host_per_node / GiB == pytest.approx(385.4, abs=0.1)


def test_hybrid_shard_shards_within_a_node_and_replicates_across_nodes(tmp_path, llama70b):
    cfg = PreflightConfig()
    full = estimate(plan_from_config(fsdp_recipe(fsdp=["full_shard"]), tmp_path), llama70b, cfg, 16, 8)
    for form in ({"fsdp": "hybrid_shard auto_wrap"}, {"fsdp_config": {"sharding_strategy": "HYBRID_SHARD"}}):
        hybrid = estimate(plan_from_config(fsdp_recipe(**form), tmp_path), llama70b, cfg, 16, 8)
        # plain PyTorch mixed precision: 2 B weight + 2 B grad + 4 B Adam per parameter, over 8 GPUs, not 16
        states = hybrid.gpu["weights"] + hybrid.gpu["gradients"] + hybrid.gpu["optimizer"]
        assert states == pytest.approx(8 * llama70b.params / 8)
        assert states == pytest.approx(2 * (full.gpu["weights"] + full.gpu["gradients"] + full.gpu["optimizer"]))
    zero2 = plan_from_config(fsdp_recipe(fsdp_config={"sharding_strategy": "HYBRID_SHARD_ZERO2"}), tmp_path)
    assert (zero2.sharding.stage, zero2.sharding.per_node) == (2, True)


@pytest.mark.parametrize(
    "over, says",
    [
        ({"fsdp": "full_shard offlaod"}, "fsdp: unknown option 'offlaod'"),
        ({"fsdp_config": {"sharding_strategy": "FULL"}}, "fsdp_config.sharding_strategy: unknown value 'FULL'"),
        ({"fsdp": 3}, "fsdp: expected a string or a list of words, got int"),
    ],
)
def test_fsdp_values_that_cannot_run_are_refused(tmp_path, over, says):
    from prep.sizing.errors import PreflightError

    with pytest.raises(PreflightError, match=re.escape(says)):
        plan_from_config(fsdp_recipe(**over), tmp_path)
