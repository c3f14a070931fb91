"""The eval jobs' model arguments as lm-eval's model classes receive them: the full fine-tune recipes'
vLLM jobs (tensor parallel, dtype) and QLoRA jobs (base model + adapter: `peft=` for hf, `lora_local_path=`
and `max_lora_rank=` for vLLM, which then enables LoRA). lm-eval's vLLM wrapper imports vllm at module
level, so its __init__ is read from its source; running it needs a GPU (skipped here, runs in the image)."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from support.eval_jobs import model_job, smoke_config

from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.callback import eval_job

# vLLM accepts these LoRA ranks (vllm.config.LoRAConfig.max_lora_rank)
VLLM_LORA_RANKS = {1, 8, 16, 32, 64, 128, 256, 320, 512}


def vllm_init() -> tuple[dict[str, ast.arg], dict[str, ast.expr]]:
    """lm_eval.models.vllm_causallms.VLLM.__init__'s parameters and the engine args dict it builds."""
    spec = importlib.util.find_spec("lm_eval.models")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations)), "vllm_causallms.py").read_text()
    cls = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == "VLLM")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    params = {a.arg: a for a in init.args.args + init.args.kwonlyargs}
    engine = next(
        n.value
        for n in ast.walk(init)
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "model_args" for t in n.targets)
        and isinstance(n.value, ast.Dict)
    )
    assert isinstance(engine, ast.Dict)
    return params, {ast.literal_eval(k): v for k, v in zip(engine.keys, engine.values, strict=True) if k is not None}


def recipe(name: str, **changes) -> tuple[dict, EpochEvalConfig]:
    cfg = yaml.safe_load((REPO / "recipes" / name).read_text())
    return cfg, EpochEvalConfig.model_validate({**cfg["epoch_eval"], **changes})


def job_args(cfg: dict, config: EpochEvalConfig, epoch: int) -> dict:
    out = "/runs/x"
    return eval_job(
        config,
        output_dir=out,
        base_model=cfg["base_model"],
        adapter=cfg.get("adapter"),
        lora_r=cfg.get("lora_r"),
        epoch=epoch,
        global_step=100 * epoch,
        checkpoint=f"{out}/checkpoint-{100 * epoch}" if epoch else cfg["base_model"],
    ).model_args


def test_full_fine_tune_vllm_job_args_are_vllm_parameters():
    """The multi-node recipe's Slurm jobs carry their vLLM arguments; the single-node recipe's same_node jobs get
    tensor_parallel_size and gpu_memory_utilization when sized to the node (here: 8 A100-80GB with the ~58 GiB
    each that ZeRO-3 with optimizer offload leaves free between epochs)."""
    import socket

    from plugins.epoch_eval.modes.same_node import GiB, GpuMemory, sized

    node = [GpuMemory(socket.gethostname(), i, 58 * GiB, 80 * GiB) for i in range(8)]
    params, engine = vllm_init()
    for name in ("llama2-70b-merged.yml", "llama2-70b-merged-multinode.yml"):
        cfg, config = recipe(name)
        assert config.backend == "vllm"
        for epoch in (0, 3):
            args = job_args(cfg, config, epoch)
            if config.mode == "same_node":
                args, _ = sized(args, "vllm", node, 137.9e9)
            assert args["pretrained"] == (f"/runs/x/checkpoint-{100 * epoch}" if epoch else cfg["base_model"])
            # every key is a named parameter: none slips into vLLM's engine kwargs under a wrong name
            assert set(args) <= set(params), set(args) - set(params)
            assert isinstance(args["tensor_parallel_size"], int) and args["tensor_parallel_size"] == 8
            dtypes = ast.literal_eval(params["dtype"].annotation.slice)  # type: ignore[union-attr]
            assert args["dtype"] in dtypes and args["dtype"] == "bfloat16"
            assert 0 < args["gpu_memory_utilization"] <= 1
            assert "lora_local_path" not in args and "peft" not in args
    # the wrapper hands these straight to vllm.LLM
    assert {"tensor_parallel_size", "dtype", "enable_lora", "max_lora_rank"} <= set(engine)


def test_qlora_jobs_pass_the_adapter_the_way_each_backend_takes_it():
    from lm_eval.models.huggingface import HFLM

    cfg, hf = recipe("llama2-70b-merged-qlora.yml")
    assert hf.backend == "hf" and cfg["adapter"] == "qlora"
    args = job_args(cfg, hf, 2)
    assert args["pretrained"] == cfg["base_model"] and args["peft"] == "/runs/x/checkpoint-200"
    assert set(args) <= set(inspect.signature(HFLM.__init__).parameters)
    assert "peft" not in job_args(cfg, hf, 0)  # epoch 0: the base model alone

    params, engine = vllm_init()
    _, vllm = recipe("llama2-70b-merged-qlora.yml", backend="vllm", model_args={"dtype": "bfloat16"})
    args = job_args(cfg, vllm, 2)
    assert args["pretrained"] == cfg["base_model"] and args["lora_local_path"] == "/runs/x/checkpoint-200"
    assert args["max_lora_rank"] == cfg["lora_r"] == 64 and args["max_lora_rank"] in VLLM_LORA_RANKS
    assert set(args) <= set(params)
    # the wrapper turns LoRA on exactly when an adapter path is given: enable_lora=bool(lora_local_path)
    assert ast.unparse(engine["enable_lora"]) == "bool(lora_local_path)"
    assert ast.unparse(engine["max_lora_rank"]) == "int(max_lora_rank)"
    assert "lora_local_path" not in job_args(cfg, vllm, 0)


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vLLM needs a CUDA GPU and the `eval` extra (installed in the Docker image); the CPU test "
    "machines have neither. The hf backend is tested end to end in test_epoch_eval.py.",
)
def test_vllm_scores_the_tiny_model(tmp_path, tiny_llama, shared_data):
    from evals import report
    from evals.jobs import run_job

    config = smoke_config(
        shared_data,
        hellaswag_only=False,
        mode="same_node",
        backend="vllm",
        model_args={"dtype": "float32", "gpu_memory_utilization": 0.3},
    )
    job = model_job(config, tmp_path, tiny_llama)
    got = report.read(run_job(job))
    assert got["status"] == "ok" and got["backend"] == "vllm"
