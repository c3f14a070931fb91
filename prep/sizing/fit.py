"""`prep fit RECIPE`: the preflight estimate without a GPU, to size and time hardware before renting it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import psutil
from pydantic import ValidationError

from prep.cli_types import NON_NEGATIVE, POSITIVE
from prep.paths import is_hub_id
from prep.sizing.checks import console, run_preflight
from prep.sizing.config import PreflightConfig
from prep.sizing.errors import PreflightError
from prep.sizing.estimate import GiB
from prep.sizing.findings import Report
from prep.sizing.gpus import GPUS, Gpu, gpu_for_device
from prep.sizing.machine import Machine, free_disk
from prep.sizing.plan import plan_from_config
from prep.sizing.recipe import read_recipe
from prep.sizing.shape import ModelConfigError
from prep.sizing.timing import Timing


@click.command("fit")
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs per node (default: the GPUs visible here).")
@click.option("--gpu-mem", type=POSITIVE, help="GiB per GPU (default: the --gpu-type's).")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--gpu-type", type=click.Choice(sorted(GPUS)), help="The GPU to time the run on (default: detected).")
@click.option(
    "--inter-node-gbps",
    type=POSITIVE,
    help="The network between nodes, Gb/s per node with all its ports (AWS p4d: 400; DGX A100: 1600); "
    "default: the --gpu-type's.",
)
@click.option(
    "--tokens-per-epoch",
    type=POSITIVE,
    help="Plan before the mixture exists: tokens per epoch, in all (replaces counting the dataset).",
)
@click.option(
    "--rows-per-epoch",
    type=POSITIVE,
    help="With --tokens-per-epoch: rows per epoch (needed when the recipe does not pack; sets padding and attention).",
)
@click.option("--price-per-gpu-hour", type=POSITIVE, help="Also print the cost at this price.")
@click.option(
    "--max-days", type=POSITIVE, help="Wall-clock budget of the run (default: the recipe's preflight.max_days)."
)
@click.option(
    "--max-gpu-hours", type=POSITIVE, help="GPU-hour budget of the run (default: the recipe's preflight.max_gpu_hours)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of the table.")
@click.option(
    "--ram",
    type=NON_NEGATIVE,
    help="GiB of host RAM per node (default: available here when timing this machine's GPUs, else not checked).",
)
@click.option(
    "--disk",
    type=NON_NEGATIVE,
    help="GiB free at output_dir (default: free here when timing this machine's GPUs, else not checked).",
)
@click.option(
    "--base-model",
    help="Read the model's config.json and tokenizer here instead of the recipe's base_model "
    "(a local copy, when the hub is out of reach).",
)
@click.option("--check-inputs", is_flag=True, help="Also check the datasets and the base model (as the plugin does).")
@click.option(
    "--eval-gpus",
    type=click.IntRange(min=0),
    help="GPUs beside training that will run `evals watch` (epoch_eval mode queue); none planned: a warning.",
)
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
    inter_node_gbps: float | None,
    tokens_per_epoch: float | None,
    rows_per_epoch: float | None,
    price_per_gpu_hour: float | None,
    max_days: float | None,
    max_gpu_hours: float | None,
    as_json: bool,
    ram: float | None,
    disk: float | None,
    base_model: str | None,
    check_inputs: bool,
    eval_gpus: int | None,
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
        if rows_per_epoch is not None and tokens_per_epoch is None:
            raise click.UsageError("--rows-per-epoch goes with --tokens-per-epoch (a built dataset is counted)")
        gpu = GPUS[gpu_type] if gpu_type else None
        elsewhere = gpus is not None or gpu_mem is not None or gpu_type is not None or nodes > 1
        machine = given_machine(gpus, gpu_mem, nodes, ram, disk, plan.output_dir, gpu, elsewhere, inter_node_gbps)
        budgets = {"max_days": max_days, "max_gpu_hours": max_gpu_hours}
        report = run_preflight(
            config,
            run_dir,
            pcfg.model_copy(update={"override": []} | {k: v for k, v in budgets.items() if v is not None}),
            machine,
            inputs=check_inputs,
            console=None if as_json else console(),
            timing=Timing(tokens_per_epoch, base_model, price_per_gpu_hour, rows_per_epoch),
            raw=config,
            where=str(recipe),
            eval_gpus=eval_gpus,
        )
    except ModelConfigError as e:
        hint = ""
        if not base_model and is_hub_id(str(config.get("base_model_config") or config.get("base_model"))):
            hint = "; without the hub (offline), give --base-model DIR: a local copy of its config.json and tokenizer"
        raise click.ClickException(f"{e}{hint}") from e
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
            "inter_node_gbps": report.time.inter_node_gbps if report.time else machine.inter_node_gbps,
            "ram_bytes": machine.ram,
            "disk_free_bytes": machine.disk_free,
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
        out["time"]["wall_seconds"] = out["time"]["total_seconds"]
    if report.evals is not None:
        out["evals"] = report.evals
        if "time" in out:  # wall-clock with the time training spends waiting for evals
            out["time"]["wall_seconds"] += report.evals["training_blocked_seconds"]
    return out


def given_machine(
    gpus: int | None,
    gpu_mem: float | None,
    nodes: int,
    ram: float | None,
    disk: float | None,
    output_dir: Path,
    gpu: Gpu | None = None,
    elsewhere: bool = False,
    inter_node_gbps: float | None = None,
) -> Machine:
    """The hardware described on the command line; what is not given is read from this machine, except, when
    planning for other hardware (`elsewhere`), its RAM and disk, which are then not checked unless given."""
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
            f"RAM {'given' if ram is not None else 'not given' if elsewhere else 'available here'}",
            f"disk {'given' if disk is not None else 'not given' if elsewhere else 'free here'}",
        ]
        + ([f"{inter_node_gbps:g} Gb/s between nodes"] if inter_node_gbps else [])
    )
    here_ram = None if elsewhere else float(psutil.virtual_memory().available)
    here_disk = None if elsewhere else free_disk(output_dir)
    return Machine(
        gpus_per_node=gpus,
        gpu_mem=mem,
        gpu_name=gpu.name if gpu else ("given" if mem else "not given (--gpus, --gpu-mem, --gpu-type)"),
        nodes=nodes,
        processes_per_node=max(gpus, 1),
        ram=ram * GiB if ram is not None else here_ram,
        disk_free=disk * GiB if disk is not None else here_disk,
        described=described,
        gpu=gpu,
        inter_node_gbps=inter_node_gbps,
    )


def fmt_gib(n: float) -> str:
    return f"{n / GiB:g} GiB"
