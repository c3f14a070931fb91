"""Compare the estimate with the machine, say what to change where it does not fit, print the table, refuse."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from prep.sizing.config import PreflightConfig
from prep.sizing.errors import PreflightError
from prep.sizing.estimate import Estimate, GiB, estimate
from prep.sizing.eval_memory import eval_findings
from prep.sizing.findings import Finding, Report, fmt
from prep.sizing.inputs import check_datasets, check_model
from prep.sizing.machine import Machine
from prep.sizing.plan import Plan, Sharding, plan_from_config
from prep.sizing.shape import ModelShape, load_shape
from prep.sizing.timing import Subject, Timing, time_findings

MAX_NODES = 64
OFFLOAD_JSON = "recipes/deepspeed/zero3_bf16_offload_optimizer.json"
QLORA_RECIPE = "recipes/llama2-70b-merged-qlora.yml"
MULTINODE_RECIPE = "recipes/llama2-70b-merged-multinode.yml"


def _usable_gpu(machine: Machine, cfg: PreflightConfig) -> float:
    return (machine.gpu_mem or 0.0) * (1 - cfg.gpu_headroom)


def _fits_gpu(plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, nodes: int) -> Estimate | None:
    est = estimate(plan, shape, cfg, nodes * machine.processes_per_node, machine.processes_per_node)
    return est if est.gpu_total <= _usable_gpu(machine, cfg) else None


def _min_nodes(plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, host: bool) -> int | None:
    """Fewest nodes of this kind on which the plan fits the GPUs (and the host RAM, when `host`)."""
    for nodes in range(1, MAX_NODES + 1):
        est = _fits_gpu(plan, shape, cfg, machine, nodes)
        if est and (not host or machine.ram is None or est.host_per_node <= machine.ram):
            return nodes
    return None


def _qlora(plan: Plan) -> Plan:
    return replace(
        plan,
        adapter="qlora",
        quant_bits=4,
        lora_r=64,
        lora_targets=None,
        lora_modules_to_save=[],
        optimizer="paged_adamw_32bit",
        sharding=Sharding(),
    )


def gpu_advice(plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, est: Estimate) -> str:
    """Concrete changes that would fit, each computed with the same arithmetic."""
    tips = []
    g = machine.processes_per_node
    if plan.sharding.stage >= 1:
        nodes = _min_nodes(plan, shape, cfg, machine, host=True)
        if nodes and nodes > machine.nodes:
            tips.append(f"{nodes} nodes of {g} GPUs ({nodes * g} GPUs; e.g. {MULTINODE_RECIPE})")
    if plan.sharding.stage == 3 and not plan.sharding.offload_optimizer:
        off = replace(plan, sharding=replace(plan.sharding, offload_optimizer=True, deepspeed=True))
        o = estimate(off, shape, cfg, machine.dp, g)
        if o.gpu_total <= _usable_gpu(machine, cfg):
            tips.append(
                f"optimizer offload ({OFFLOAD_JSON}): {fmt(o.gpu_total)}/GPU, {fmt(o.host_per_node)} host RAM per node"
            )
    if plan.sharding.stage == 0 and not plan.adapter and machine.dp > 1:
        z3 = replace(plan, sharding=Sharding(stage=3, deepspeed=True))
        tips.append(f"DeepSpeed ZeRO-3: {fmt(estimate(z3, shape, cfg, machine.dp, g).gpu_total)}/GPU")
    if not plan.adapter:
        q = estimate(_qlora(plan), shape, cfg, 1, 1)
        tips.append(f"QLoRA ({QLORA_RECIPE}): {fmt(q.gpu_total)}/GPU")
    if not plan.gradient_checkpointing:
        ck = estimate(replace(plan, gradient_checkpointing=True), shape, cfg, machine.dp, g)
        tips.append(
            f"gradient_checkpointing: true (activations {fmt(est.gpu['activations'])} -> {fmt(ck.gpu['activations'])})"
        )
    if plan.micro_batch > 1:
        tips.append(f"micro_batch_size: 1 (raise gradient_accumulation_steps x{plan.micro_batch})")
    return "change: " + "; or ".join(tips) if tips else "change: a shorter sequence_len or bigger GPUs"


def host_advice(plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, est: Estimate) -> str:
    tips = []
    g = machine.processes_per_node
    nodes = _min_nodes(plan, shape, cfg, machine, host=True)
    if nodes and nodes > machine.nodes:
        tips.append(f"{nodes} nodes (the offloaded states split across nodes)")
    if plan.sharding.offload_optimizer or plan.sharding.offload_param:
        plain = replace(plan, sharding=replace(plan.sharding, offload_optimizer=False, offload_param=False))
        n = _min_nodes(plain, shape, cfg, machine, host=True)
        if n:
            tips.append(
                f"no offload on {n} node(s) of {g} GPUs ({MULTINODE_RECIPE}): "
                f"{fmt(estimate(plain, shape, cfg, n * g, g).gpu_total)}/GPU"
            )
    if not plan.adapter:
        tips.append(f"QLoRA ({QLORA_RECIPE}), which offloads nothing")
    if cfg.host_buffer_factor > 1:
        tips.append(
            f"host_buffer_factor: 1.0 drops DeepSpeed's x{cfg.host_buffer_factor:g} margin "
            f"({fmt(est.host_per_node / cfg.host_buffer_factor)}), at your risk"
        )
    return "change: " + "; or ".join(tips)


def disk_advice(est: Estimate, have: float, save_only_model: bool) -> str:
    tips = []
    limit = next((k for k in range(est.save_total_limit - 1, 0, -1) if est.disk_run(limit=k) <= have), None)
    if limit:
        tips.append(f"save_total_limit: {limit} ({fmt(est.disk_run(limit=limit))})")
    if not save_only_model and est.disk_model_only < est.disk_per_save:
        tips.append(
            f"save_only_model: true ({fmt(est.disk_model_only)}/save, "
            f"{fmt(est.disk_run(per_save=est.disk_model_only))} for the run; no resuming)"
        )
    tips.append("an output_dir on a bigger disk")
    return "change: " + "; or ".join(tips)


def sharding_setup(plan: Plan) -> str:
    z = plan.sharding
    if not z.stage:
        return "no sharding"
    return (
        f"ZeRO-{z.stage}"
        + (" + optimizer offload" if z.offload_optimizer else "")
        + (" + param offload" if z.offload_param else "")
    )


def params_finding(plan: Plan, shape: ModelShape, machine: Machine, est: Estimate) -> Finding:
    return Finding(
        "info",
        "parameters",
        f"{shape.params:,}",
        "",
        "info",
        f"trainable {est.trainable:,}; {plan.adapter or 'full fine-tune'}; {sharding_setup(plan)} over "
        f"{machine.dp} process(es); seq {plan.seq_len} x micro batch {plan.micro_batch}",
    )


def gpu_finding(plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, est: Estimate) -> Finding:
    """GPU memory per GPU against the usable share of the GPU's, with the changes that fit when it does not."""
    parts = ", ".join(f"{k} {fmt(v)}" for k, v in est.gpu.items() if v)
    if machine.gpu_mem is None:
        skipped = f"GPU checks skipped: no GPU visible. {parts}"
        return Finding("gpu_memory", "GPU memory / GPU", fmt(est.gpu_total), machine.gpu_name, "skip", skipped)
    usable = _usable_gpu(machine, cfg)
    ok = est.gpu_total <= usable
    return Finding(
        "gpu_memory",
        "GPU memory / GPU",
        fmt(est.gpu_total),
        f"{fmt(machine.gpu_mem)} x {machine.gpus_per_node} ({fmt(usable)} usable)",
        "ok" if ok else "fail",
        parts if ok else f"{parts}. {gpu_advice(plan, shape, cfg, machine, est)}",
    )


def host_finding(
    plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, est: Estimate, on_cpu: bool
) -> Finding:
    """Host RAM per node (the offloaded states; on CPU, also what would be on the GPUs) against the node's."""
    host = est.host_per_node
    note = f"offloaded states x{cfg.host_buffer_factor:g}" if host else "nothing offloaded"
    if on_cpu:
        host += (est.gpu_total - est.gpu["cuda overhead"]) * machine.processes_per_node
        note += "; training on CPU: the model states and activations live here too"
    if machine.ram is None:
        unknown = f"{note}; not checked: the target machine's RAM is not known here (give --ram GiB)"
        return Finding("host_ram", "host RAM / node", fmt(host), "not given", "skip", unknown)
    ok = host <= machine.ram
    return Finding(
        "host_ram",
        "host RAM / node",
        fmt(host),
        fmt(machine.ram),
        "ok" if ok else "fail",
        note if ok else f"{note}. {host_advice(plan, shape, cfg, machine, est)}",
    )


def fit_findings(
    plan: Plan, shape: ModelShape, cfg: PreflightConfig, machine: Machine, on_cpu: bool
) -> tuple[Estimate, list[Finding]]:
    """Memory and disk rows. `on_cpu`: the run trains on the host (no GPU), so device memory is host RAM."""
    est = estimate(plan, shape, cfg, machine.dp, machine.processes_per_node)
    return est, [
        params_finding(plan, shape, machine, est),
        gpu_finding(plan, shape, cfg, machine, est),
        host_finding(plan, shape, cfg, machine, est, on_cpu),
        *disk_findings(plan, cfg, machine, est),
    ]


def disk_findings(plan: Plan, cfg: PreflightConfig, machine: Machine, est: Estimate) -> list[Finding]:
    """Disk per save and for the run against the free space at output_dir (or `disk_budget_gb`); not checked when
    neither is known (planning for another machine without --disk)."""
    free = machine.disk_free
    budget = cfg.disk_budget_gb * GiB if cfg.disk_budget_gb else None
    saves = "unknown count (integer save_steps)" if est.saves is None else f"{est.saves} saves"
    note = (
        f"{saves}, save_total_limit {est.save_total_limit} (+1 while rotating"
        + (f", +{est.held_checkpoints} awaiting their eval" if est.held_checkpoints else "")
        + "), final model "
        f"{fmt(est.disk_final)}; at {plan.output_dir}"
    )
    per_save = f"model {fmt(est.disk_model_only)}" + (
        " + optimizer state" if est.disk_per_save > est.disk_model_only else ""
    )
    run = est.disk_run()
    if free is None and budget is None:
        unknown = "not checked: the target machine's free disk is not known here (give --disk GiB)"
        return [
            Finding("disk", "disk / save", fmt(est.disk_per_save), "not given", "skip", f"{per_save}; {unknown}"),
            Finding("disk", "disk / run (peak)", fmt(run), "not given", "skip", f"{note}; {unknown}"),
        ]
    have = min(x for x in (free, budget) if x is not None)
    have_note = f"{fmt(have)} (budget)" if budget is not None and (free is None or budget < free) else fmt(have)
    ok = run <= have
    return [
        Finding(
            "disk",
            "disk / save",
            fmt(est.disk_per_save),
            have_note,
            "ok" if est.disk_per_save <= have else "fail",
            per_save,
        ),
        Finding(
            "disk",
            "disk / run (peak)",
            fmt(run),
            have_note,
            "ok" if ok else "fail",
            note if ok else f"{note}. {disk_advice(est, have, plan.save_only_model)}",
        ),
    ]


def input_findings(plan: Plan, run_dir: Path, cfg: PreflightConfig) -> list[Finding]:
    checks = [*check_datasets(plan.datasets, run_dir, cfg.dataset_rows), check_model(plan.base_model, run_dir)]
    return [Finding(c.name, c.name, "", "", c.status, c.detail) for c in checks]


def key_findings(config: Mapping[str, Any]) -> list[Finding]:
    """Top-level keys Axolotl would drop without a word (a misspelt `num_epochs`, a `prefligh:` block)."""
    from prep.sizing.recipe import unknown_keys

    unknown = unknown_keys(config)
    if unknown is None:
        return [Finding("recipe_keys", "recipe keys", "", "", "skip", "not checked: Axolotl is not installed here")]
    if not unknown:
        return [Finding("recipe_keys", "recipe keys", "", "", "ok", "every top-level key is known to Axolotl")]
    return [
        Finding(
            "recipe_keys",
            "recipe keys",
            ", ".join(unknown),
            "unknown to Axolotl",
            "fail",
            "Axolotl drops unknown keys silently, so the run would ignore them: fix the spelling",
        )
    ]


def run_preflight(
    config: Mapping[str, Any],
    run_dir: Path,
    cfg: PreflightConfig,
    machine: Machine,
    *,
    fit: bool = True,
    inputs: bool = True,
    on_cpu: bool = False,
    console: Console | None = None,
    timing: Timing | None = None,
    raw: Mapping[str, Any] | None = None,
    where: str = "the recipe",
    eval_gpus: int | None = None,
) -> Report:
    """Check a config against a machine; print the table when given a console; raise where it cannot finish.
    `timing` adds the time rows (tokens, time per epoch and run, evals, the budget); `raw`, the recipe as
    written, has its top-level keys checked against Axolotl's; `eval_gpus`, the GPUs planned beside training for
    a queue run's `evals watch` (prep fit's --eval-gpus)."""
    plan = plan_from_config(config, run_dir, where)
    findings = key_findings(raw) if raw is not None else []
    findings += input_findings(plan, run_dir, cfg) if inputs else []
    est = None
    run = evals = None
    if fit:
        if any(f.check == "model" and f.status == "fail" for f in findings):
            findings.append(Finding("info", "memory / disk", "", "", "skip", "not estimated: base_model unreadable"))
        else:
            shape = load_shape(plan.base_model, plan.trust_remote_code)
            est, rows = fit_findings(plan, shape, cfg, machine, on_cpu)
            rows += eval_findings(plan, shape, est, config, machine, cfg, eval_gpus)
            findings = rows + findings
            if timing is not None:

                def fits_memory(nodes: int) -> bool:
                    return machine.gpu_mem is None or _fits_gpu(plan, shape, cfg, machine, nodes) is not None

                subject = Subject(plan, config, run_dir, shape, est.trainable)
                run, evals, time_rows = time_findings(subject, cfg, machine, timing, fits_memory)
                findings = rows + time_rows + findings[len(rows) :]
    report = Report(findings, est, run, evals)
    if console is not None:
        console.print(render(report, machine))
    refusals = report.refusals(list(cfg.override))
    if refusals:
        lines = "\n".join(f"  - {f.label}: needs {f.need or '-'}, has {f.have or '-'}. {f.note}" for f in refusals)
        names = sorted({f.check for f in refusals})
        raise PreflightError(
            f"preflight: this run cannot finish as configured:\n{lines}\n"
            f"To run anyway set `preflight: {{override: [{', '.join(names)}]}}`.",
            report,
        )
    return report


STYLE = {"ok": "green", "fail": "bold red", "warn": "yellow", "skip": "yellow", "info": "cyan"}


def render(report: Report, machine: Machine) -> Table:
    table = Table(title=f"preflight ({machine.described})", show_lines=True)
    for col in ("check", "needs", "has", "status", "notes"):
        table.add_column(col, justify="right" if col in ("needs", "has") else "left", overflow="fold")
    for f in report.findings:
        table.add_row(f.label, f.need, f.have, f"[{STYLE[f.status]}]{f.status}[/]", f.note)
    return table


def console(stream: TextIO | None = None) -> Console:
    """stderr unless given (resolved now, so a redirected stderr is honoured); wide enough off a terminal."""
    stream = stream or sys.stderr
    return Console(file=stream, width=None if stream.isatty() else 160)
