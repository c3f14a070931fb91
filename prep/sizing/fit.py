"""`prep fit RECIPE`: the preflight estimate without a GPU, to size and time hardware before renting it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import psutil
from pydantic import ValidationError

from prep.sizing.checks import console, run_preflight
from prep.sizing.config import PreflightConfig
from prep.sizing.errors import PreflightError
from prep.sizing.estimate import GiB
from prep.sizing.findings import Report
from prep.sizing.gpus import GPUS, Gpu, gpu_for_device
from prep.sizing.machine import Machine, free_disk
from prep.sizing.plan import plan_from_config
from prep.sizing.recipe import read_recipe
from prep.sizing.timing import Timing


@click.command("fit")
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs per node (default: the GPUs visible here).")
@click.option("--gpu-mem", type=click.FloatRange(min=0, min_open=True), help="GiB per GPU (default: the --gpu-type's).")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--gpu-type", type=click.Choice(sorted(GPUS)), help="The GPU to time the run on (default: detected).")
@click.option(
    "--tokens-per-epoch",
    type=click.FloatRange(min=0, min_open=True),
    help="Plan before the mixture exists: training tokens per epoch (replaces counting the dataset).",
)
@click.option(
    "--price-per-gpu-hour", type=click.FloatRange(min=0, min_open=True), help="Also print the cost at this price."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of the table.")
@click.option("--ram", type=click.FloatRange(min=0), help="GiB of host RAM per node (default: available here).")
@click.option("--disk", type=click.FloatRange(min=0), help="GiB free at output_dir (default: free here).")
@click.option(
    "--base-model",
    help="Read the model's config.json and tokenizer here instead of the recipe's base_model "
    "(a local copy, when the hub is out of reach).",
)
@click.option("--check-inputs", is_flag=True, help="Also check the datasets and the base model (as the plugin does).")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where `axolotl train` will run: relative paths in the recipe resolve from here.",
)
def fit(
    recipe: Path,
    gpus: int | None,
    gpu_mem: float | None,
    nodes: int,
    gpu_type: str | None,
    tokens_per_epoch: float | None,
    price_per_gpu_hour: float | None,
    as_json: bool,
    ram: float | None,
    disk: float | None,
    base_model: str | None,
    check_inputs: bool,
    run_dir: Path,
) -> None:
    """Estimate GPU memory, host RAM, disk, tokens, time and cost for RECIPE on the given hardware; exit 1 where
    it does not fit (or is over its preflight budget)."""
    try:
        config = read_recipe(recipe)
        if base_model:
            config["base_model"] = base_model
            config.pop("base_model_config", None)
        pcfg = PreflightConfig.model_validate(config.get("preflight") or {})
        plan = plan_from_config(config, run_dir, str(recipe))
        gpu = GPUS[gpu_type] if gpu_type else None
        machine = given_machine(gpus, gpu_mem, nodes, ram, disk, plan.output_dir, gpu)
        report = run_preflight(
            config,
            run_dir,
            pcfg.model_copy(update={"override": []}),
            machine,
            inputs=check_inputs,
            console=None if as_json else console(),
            timing=Timing(tokens_per_epoch, base_model, price_per_gpu_hour),
            raw=config,
            where=str(recipe),
        )
    except PreflightError as e:
        if as_json:  # a refusal still prints its figures: scripts read the time of a run over budget too
            out = report_json(e.report, machine, price_per_gpu_hour) if e.report is not None else {}
            print(json.dumps({**out, "error": str(e)}))
        raise click.ClickException(str(e)) from e
    except ValidationError as e:  # a bad `preflight:` block
        first = e.errors()[0]
        key = ".".join(str(x) for x in first["loc"])
        raise click.ClickException(f"{recipe}: preflight.{key}: {first['msg']} ({e.error_count()} error(s))") from e
    if as_json:
        json.dump(report_json(report, machine, price_per_gpu_hour or pcfg.price_per_gpu_hour), sys.stdout)
        sys.stdout.write("\n")


def report_json(report: Report, machine: Machine, price: float | None) -> dict[str, Any]:
    est = report.estimate
    out: dict[str, Any] = {
        "machine": {
            "nodes": machine.nodes,
            "gpus_per_node": machine.gpus_per_node,
            "gpu": machine.gpu.key if machine.gpu else None,
            "gpu_mem_bytes": machine.gpu_mem,
        },
        "findings": [f.__dict__ for f in report.findings],
    }
    if est is not None:
        out["memory"] = {
            "params": est.params,
            "trainable": est.trainable,
            "gpu_bytes": est.gpu,
            "gpu_total_bytes": est.gpu_total,
            "host_per_node_bytes": est.host_per_node,
        }
        out["disk"] = {
            "per_save_bytes": est.disk_per_save,
            "run_peak_bytes": est.disk_run(),
            "saves": est.saves,
            "held_checkpoints": est.held_checkpoints,
        }
    if report.time is not None:
        out["time"] = report.time.to_json(price)
        out["time"]["mfu"] = report.time.mfu
    if report.evals is not None:
        out["evals"] = report.evals
        if "time" in out:  # wall-clock with the time training spends waiting for evals
            out["time"]["wall_seconds"] = out["time"]["total_seconds"] + report.evals["training_blocked_seconds"]
    return out


def given_machine(
    gpus: int | None,
    gpu_mem: float | None,
    nodes: int,
    ram: float | None,
    disk: float | None,
    output_dir: Path,
    gpu: Gpu | None = None,
) -> Machine:
    """The hardware described on the command line; what is not given is read from this machine."""
    import torch

    here = torch.cuda.device_count()
    gpus = gpus or here
    if gpu is None and here:
        gpu = gpu_for_device(torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory)
    if gpu_mem:
        mem: float | None = gpu_mem * GiB
    elif gpu is not None:
        mem = gpu.memory_gib * GiB
    else:
        mem = float(torch.cuda.get_device_properties(0).total_memory) if here else None
    gpus = gpus or (1 if gpu is not None else 0)
    described = ", ".join(
        [
            f"{nodes} node(s) x {gpus} GPU(s)"
            + (f" {gpu.name}" if gpu else "")
            + (f" x {fmt_gib(mem)}" if mem else " (GPU memory not given)"),
            f"RAM {'given' if ram is not None else 'available here'}",
            f"disk {'given' if disk is not None else 'free here'}",
        ]
    )
    return Machine(
        gpus_per_node=gpus,
        gpu_mem=mem,
        gpu_name=gpu.name if gpu else ("given" if mem else "not given (--gpus, --gpu-mem, --gpu-type)"),
        nodes=nodes,
        processes_per_node=max(gpus, 1),
        ram=ram * GiB if ram is not None else float(psutil.virtual_memory().available),
        disk_free=disk * GiB if disk is not None else free_disk(output_dir),
        described=described,
        gpu=gpu,
    )


def fmt_gib(n: float) -> str:
    return f"{n / GiB:g} GiB"
