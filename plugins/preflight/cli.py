"""`prep fit RECIPE`: the preflight estimate without a GPU, to size hardware before renting it."""

from __future__ import annotations

from pathlib import Path

import click
import psutil
import yaml

from plugins.preflight.args import PreflightConfig
from plugins.preflight.checks import console, run_preflight
from plugins.preflight.errors import PreflightError
from plugins.preflight.estimate import GiB
from plugins.preflight.machine import Machine, free_disk
from plugins.preflight.plan import plan_from_config


@click.command("fit")
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs per node (default: the GPUs visible here).")
@click.option("--gpu-mem", type=click.FloatRange(min=0, min_open=True), help="GiB per GPU (80 for A100-80GB).")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--ram", type=click.FloatRange(min=0), help="GiB of host RAM per node (default: available here).")
@click.option("--disk", type=click.FloatRange(min=0), help="GiB free at output_dir (default: free here).")
@click.option(
    "--base-model",
    help="Read the model's config.json here instead of the recipe's base_model "
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
    ram: float | None,
    disk: float | None,
    base_model: str | None,
    check_inputs: bool,
    run_dir: Path,
) -> None:
    """Estimate GPU memory, host RAM and disk for RECIPE on the given hardware; exit 1 where it does not fit."""
    config = yaml.safe_load(recipe.read_text()) or {}
    if base_model:
        config["base_model"] = base_model
        config.pop("base_model_config", None)
    try:
        pcfg = PreflightConfig.model_validate(config.get("preflight") or {})
        plan = plan_from_config(config, run_dir)
        machine = given_machine(gpus, gpu_mem, nodes, ram, disk, plan.output_dir)
        run_preflight(
            config, run_dir, pcfg.model_copy(update={"override": []}), machine, inputs=check_inputs, console=console()
        )
    except PreflightError as e:
        raise click.ClickException(str(e)) from e
    except ValueError as e:  # pydantic: a bad `preflight:` block
        raise click.ClickException(f"{recipe}: preflight: {e}") from e


def given_machine(
    gpus: int | None, gpu_mem: float | None, nodes: int, ram: float | None, disk: float | None, output_dir: Path
) -> Machine:
    """The hardware described on the command line; what is not given is read from this machine."""
    import torch

    here = torch.cuda.device_count()
    gpus = gpus or here
    mem = gpu_mem * GiB if gpu_mem else (float(torch.cuda.get_device_properties(0).total_memory) if here else None)
    described = ", ".join(
        [
            f"{nodes} node(s) x {gpus} GPU(s)" + (f" x {fmt_gib(mem)}" if mem else " (GPU memory not given)"),
            f"RAM {'given' if ram is not None else 'available here'}",
            f"disk {'given' if disk is not None else 'free here'}",
        ]
    )
    return Machine(
        gpus_per_node=gpus,
        gpu_mem=mem,
        gpu_name="not given (--gpus, --gpu-mem)" if not mem else "given",
        nodes=nodes,
        processes_per_node=max(gpus, 1),
        ram=ram * GiB if ram is not None else float(psutil.virtual_memory().available),
        disk_free=disk * GiB if disk is not None else free_disk(output_dir),
        described=described,
    )


def fmt_gib(n: float) -> str:
    return f"{n / GiB:g} GiB"
