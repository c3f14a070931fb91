"""The time rows of the preflight table: tokens per epoch, time per epoch and per run, the per-epoch evals, the
budget (`max_days`, `max_gpu_hours`) and, over budget, the changes that would fit, computed with the same model."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from prep.sizing.config import PreflightConfig
from prep.sizing.errors import PreflightError
from prep.sizing.eval_memory import score_from
from prep.sizing.eval_modes import MODES
from prep.sizing.evalcost import eval_tokens
from prep.sizing.findings import Finding
from prep.sizing.gpus import GPUS, Gpu
from prep.sizing.machine import Machine
from prep.sizing.plan import Plan
from prep.sizing.runtime import STACK, RunTime, Workload, matmul_params, run_time
from prep.sizing.shape import ModelShape
from prep.sizing.workload import from_lengths, from_tokens, workload

MAX_NODES = 64
DEFAULT_BENCH_DIR = "../shared/data"  # the local MMLU/HellaSwag copies, relative to the run directory


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass(frozen=True)
class Timing:
    """What the time rows need besides the plan: given on the command line or read from the recipe."""

    tokens_per_epoch: float | None = None
    tokenizer: str | None = None  # a local copy of the base model's tokenizer
    price: float | None = None
    rows_per_epoch: float | None = None  # with tokens_per_epoch: what an unpacked recipe's steps depend on


def _gpu(machine: Machine, cfg: PreflightConfig) -> Gpu | None:
    if machine.gpu is not None:
        return machine.gpu
    return GPUS[cfg.gpu_type] if cfg.gpu_type else None


def _eval_gpus(plan: Plan, ev: Mapping[str, Any], per_node: int) -> tuple[int, str]:
    """GPUs one eval runs on, and how: same_node uses rank 0's GPU for the in-memory model and the node's GPUs for
    a checkpoint; elsewhere the tensor_parallel_size the block gives (else 1)."""
    mode = str(ev.get("mode") or "same_node")
    model_args = ev.get("model_args") or {}
    given = int(model_args.get("tensor_parallel_size") or 0) if isinstance(model_args, Mapping) else 0
    if mode == "same_node":
        how = score_from(plan, ev)
        return (1, "the in-memory model on rank 0's GPU") if how == "memory" else (given or per_node, "the checkpoint")
    return given or 1, f"`{MODES[mode].scheduler}`" if mode in MODES else mode


def _eval_rows(
    config: Mapping[str, Any], run_dir: Path, rt: RunTime, shape: ModelShape, tokenizer: Any, plan: Plan, per_node: int
) -> tuple[dict[str, Any] | None, list[Finding]]:
    ev = config.get("epoch_eval")
    if not isinstance(ev, Mapping) or not ev.get("tasks"):
        return None, []
    data = run_dir / str(ev.get("task_data_dir") or DEFAULT_BENCH_DIR)
    if not (data / "mmlu").is_dir() and not (data / "hellaswag").is_dir():
        return None, [Finding("info", "eval / epoch", "", "", "skip", f"not counted: no benchmark files at {data}")]
    try:
        tasks, how = eval_tokens(data, ev, tokenizer)
    except (OSError, ValueError, IndexError) as e:
        return None, [Finding("info", "eval / epoch", "", "", "skip", f"not counted: {data}: {e}")]
    gpus, where = _eval_gpus(plan, ev, per_node)
    gpu = rt.gpu
    per_token = 2 * matmul_params(shape)
    computed = sum(t.computed for t in tasks)
    seconds = computed * per_token / (gpu.peak * gpu.hfu * STACK * gpus)
    mode = str(ev.get("mode") or "same_node")
    runs = math.ceil(rt.epochs) + (1 if ev.get("eval_base_model") else 0)
    figures = {
        "tasks": {
            t.task: {"items": t.items, "request_tokens": round(t.requested), "computed_tokens": round(t.computed)}
            for t in tasks
        },
        "tokens_counted": how,
        "gpus": gpus,
        "seconds_per_epoch": seconds,
        "evals": runs,
        "mode": mode,
    }
    detail = "; ".join(f"{t.task}: {t.items:,} items, {t.requested:,.0f} tokens requested" for t in tasks)
    rows = [
        Finding(
            "info",
            "eval / epoch",
            duration(seconds),
            f"{gpus} x {gpu.name}",
            "info",
            f"{detail}; {computed:,.0f} tokens computed ({ev.get('backend') or 'hf'} backend, {where}); {how}; "
            f"{runs} evals in the run ({mode})",
        )
    ]
    if mode in MODES and MODES[mode].blocking:
        rows.append(
            Finding(
                "info",
                "eval waits",
                duration(seconds * runs),
                "",
                "info",
                "training waits for each eval (counted in the run's time); the other ranks wait on a file, not in "
                "a collective, so ddp_timeout does not bound the eval",
            )
        )
    else:  # on other GPUs: does it keep pace with the epochs?
        keeps = seconds <= rt.seconds_per_epoch
        figures["queue_keeps_up"] = keeps
        # epoch_eval keeps unscored checkpoints and, once max_pending_checkpoints await their eval, training
        # waits at each epoch end: in the steady state the run then goes at the evals' pace
        figures["training_waits_seconds"] = 0.0 if keeps else (seconds - rt.seconds_per_epoch) * math.ceil(rt.epochs)
        note = (
            f"one eval ({duration(seconds)}) per epoch ({duration(rt.seconds_per_epoch)}): the evals keep up"
            if keeps
            else f"one eval ({duration(seconds)}) outlasts an epoch ({duration(rt.seconds_per_epoch)}): training "
            f"waits at epoch ends once `max_pending_checkpoints` await their eval (counted in the run's time); "
            "more eval workers (evals watch) or GPUs per eval avoid it"
        )
        rows.append(Finding("info", "eval queue", "", "", "ok" if keeps else "warn", note))
    return figures, rows


def training_waits(evals: Mapping[str, Any] | None, rt: RunTime, planned_epochs: float) -> float:
    """Seconds training waits for the per-epoch evals in a run timed as `rt` (its epochs and their length), by the
    rule the eval rows state: blocking modes wait out every eval (one per epoch, plus the base model's when the
    planned run has one); the others only when an eval outlasts an epoch, at each epoch end."""
    if not evals:
        return 0.0
    per_eval = float(evals["seconds_per_epoch"])
    if evals["mode"] in MODES and MODES[evals["mode"]].blocking:
        base = int(evals["evals"]) - math.ceil(planned_epochs)
        return per_eval * (math.ceil(rt.epochs) + base)
    return max(per_eval - rt.seconds_per_epoch, 0.0) * math.ceil(rt.epochs)


@dataclass(frozen=True)
class Budget:
    """`max_days` / `max_gpu_hours` as one test that the check and the advice both use."""

    seconds: float
    gpu_hours: float

    @classmethod
    def of(cls, cfg: PreflightConfig) -> Budget:
        return cls(cfg.max_days * 86400 if cfg.max_days else math.inf, cfg.max_gpu_hours or math.inf)

    def over(self, wall_seconds: float, gpus: int) -> bool:
        return wall_seconds > self.seconds or wall_seconds * gpus / 3600 > self.gpu_hours

    def fits(self, rt: RunTime, evals: Mapping[str, Any] | None, planned_epochs: float) -> bool:
        """A run timed as `rt`, with the time training waits for its evals, is within the budget."""
        return not self.over(rt.total_seconds + training_waits(evals, rt, planned_epochs), rt.gpus)


@dataclass(frozen=True)
class Timer:
    """The run-time model for one model on one kind of GPU and node: `timer(plan, workload, nodes)`."""

    shape: ModelShape
    gpu: Gpu
    per_node: int
    trainable: float
    gbps: float | None  # the network between nodes, when given; else the GPU's default

    def __call__(self, plan: Plan, work: Workload, nodes: int) -> RunTime:
        return run_time(plan, self.shape, work, self.gpu, nodes, self.per_node, self.trainable, self.gbps)


@dataclass(frozen=True)
class Subject:
    """What the time rows time: the recipe as read (`config`, in `run_dir`), its plan, its model's shape and
    trainable parameters."""

    plan: Plan
    config: Mapping[str, Any]
    run_dir: Path
    shape: ModelShape
    trainable: float


def untimed(why: str, have: str = "") -> tuple[None, None, list[Finding]]:
    return None, None, [Finding("time", "time / run", "", have, "skip", f"not timed: {why}")]


def tokens_finding(plan: Plan, work: Workload) -> Finding:
    packing = f", packed {work.packing_efficiency:.1%} full" if work.packing_efficiency else ""
    trained = (
        f"{work.trainable:,.0f} trainable" if work.trainable is not None else "a total (the trainable share not known)"
    )
    rows = f"{work.rows:,.0f} rows -> " if work.rows is not None else ""
    return Finding(
        "info",
        "tokens / epoch",
        f"{work.tokens:,.0f}",
        "",
        "info",
        f"{trained}; {rows}{work.sequences:,.0f} sequences of {plan.seq_len}{packing}; {work.how}",
    )


def epoch_finding(rt: RunTime, timer: Timer) -> Finding:
    """Time per epoch: steps, the parts of a step, FLOPs per token, the network, the regime's error band."""
    network = (
        f"; nodes linked at {rt.inter_node_gbps:,.0f} Gb/s each"
        + ("" if timer.gbps else f" (the {timer.gpu.key} default; --inter-node-gbps sets yours)")
        if rt.inter_node_gbps
        else ""
    )
    expected = rt.band.expect(rt.seconds_per_epoch)
    band = rt.band.describe() + (f", so expect {duration(expected[0])} to {duration(expected[1])}" if expected else "")
    return Finding(
        "info",
        "time / epoch",
        duration(rt.seconds_per_epoch),
        f"{rt.gpus} x {timer.gpu.name}",
        "info",
        f"{rt.steps_per_epoch:,} steps x {rt.seconds_per_step:.2f} s ("
        + ", ".join(f"{k} {v:.2f} s" for k, v in rt.step_parts.items())
        + f"); {rt.flops_per_token / 1e9:,.1f} GFLOP per token{network}; published runs like this: {band}",
    )


def cost(seconds: float, gpus: int, price: float | None) -> str:
    """Wall time, GPU-hours and, at a price, dollars."""
    gpu_hours = seconds * gpus / 3600
    return f"{duration(seconds)}, {gpu_hours:,.0f} GPU-h" + (f", ${gpu_hours * price:,.0f}" if price else "")


def budget_given(cfg: PreflightConfig) -> str:
    days = f"{cfg.max_days:g} days" if cfg.max_days else ""
    hours = f"{cfg.max_gpu_hours:g} GPU-h" if cfg.max_gpu_hours else ""
    return " / ".join(x for x in (days, hours) if x) or "no budget set"


def run_note(plan: Plan, rt: RunTime, evals: Mapping[str, Any] | None, waits: float) -> str:
    """The epochs, the time training waits for evals, and the error band over the whole run."""
    note = f"{plan.epochs:g} epochs"
    if evals and waits:
        note += f" + {duration(waits)} of training waiting for evals ({evals['mode']})"
    if expected := rt.band.expect(rt.total_seconds):
        note += f"; by the band above, expect {duration(expected[0] + waits)} to {duration(expected[1] + waits)}"
    return note


def time_findings(
    subject: Subject, cfg: PreflightConfig, machine: Machine, timing: Timing, fits_memory: Callable[[int], bool]
) -> tuple[RunTime | None, dict[str, Any] | None, list[Finding]]:
    """Time rows, and a refusal with the changes that fit when the run is over `max_days`/`max_gpu_hours`."""
    plan = subject.plan
    gpu = _gpu(machine, cfg)
    if gpu is None:
        return untimed(
            "no GPU of the table (a100-40gb, a100-80gb, h100, h200, l40s) given or detected; give --gpu-type or "
            "preflight.gpu_type",
            machine.gpu_name,
        )
    try:
        work = workload(
            plan,
            subject.run_dir,
            timing.tokens_per_epoch,
            timing.tokenizer,
            cfg.count_sample_rows,
            timing.rows_per_epoch,
        )
    except PreflightError as e:
        return untimed(str(e))
    per_node = machine.processes_per_node
    timer = Timer(subject.shape, gpu, per_node, subject.trainable, machine.inter_node_gbps or cfg.inter_node_gbps)
    rt = timer(plan, work, machine.nodes)
    tokenizer = work.counter.tokenizer if work.counter is not None else None
    evals, eval_rows = _eval_rows(subject.config, subject.run_dir, rt, subject.shape, tokenizer, plan, per_node)
    waits = training_waits(evals, rt, plan.epochs)
    if evals:
        evals["training_blocked_seconds"] = waits
    budget = Budget.of(cfg)
    total = rt.total_seconds + waits
    over = budget.over(total, rt.gpus)
    note = run_note(plan, rt, evals, waits)
    if over:
        fits = partial(budget.fits, evals=evals, planned_epochs=plan.epochs)
        note += ". " + time_advice(plan, work, timer, fits, fits_memory, machine.nodes, per_node, evals)
    price = timing.price or cfg.price_per_gpu_hour
    run = Finding("time", "time / run", cost(total, rt.gpus, price), budget_given(cfg), "fail" if over else "ok", note)
    return rt, evals, [tokens_finding(plan, work), epoch_finding(rt, timer), run, *eval_rows]


def scaled(work: Workload, share: float) -> Workload:
    """The same kind of epoch with `share` of its rows: what a token budget for the mixture leaves."""
    return replace(
        work,
        tokens=work.tokens * share,
        trainable=None if work.trainable is None else work.trainable * share,
        rows=None if work.rows is None else work.rows * share,
        sequences=work.sequences * share,
        computed_tokens=work.computed_tokens * share,
        counted=None,
    )


def token_budget(
    plan: Plan,
    work: Workload,
    timed: Callable[[Plan, Workload, int], RunTime],
    fits: Callable[[RunTime], bool],
    nodes: int,
) -> tuple[float, float | None] | None:
    """The most tokens (and rows, when counted) per epoch that fit, found by bisection on the same timing as the
    check, and verified as printed: `--tokens-per-epoch` (and `--rows-per-epoch`) with these values passes."""

    def passes(tokens: float, rows: float | None) -> bool:
        """As applied: `--tokens-per-epoch tokens [--rows-per-epoch rows]`, and for a counted dataset also the same
        rows cut down to that share."""
        given = fits(timed(plan, from_tokens(plan, tokens, work.how, rows), nodes))
        return given and (work.counted is None or fits(timed(plan, scaled(work, tokens / work.tokens), nodes)))

    def ok(share: float) -> bool:
        return fits(timed(plan, scaled(work, share), nodes))

    if not ok(1e-9):
        return None
    low, high = 0.0, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    tokens = math.floor(work.tokens * low)
    rows = None if work.rows is None else math.ceil(work.rows * low)
    while tokens > 0 and not passes(tokens, rows):
        tokens, rows = math.floor(tokens * 0.995), None if rows is None else math.ceil(rows * 0.995)
    return (tokens, rows) if tokens > 0 else None


def time_advice(
    plan: Plan,
    work: Workload,
    timed: Callable[[Plan, Workload, int], RunTime],
    fits: Callable[[RunTime], bool],
    fits_memory: Callable[[int], bool],
    nodes: int,
    per_node: int,
    evals: Mapping[str, Any] | None,
) -> str:
    """Changes that bring the run within budget, each timed with the same model and the same test as the check
    (evals' waits included)."""
    tips = []
    for n in range(nodes + 1, MAX_NODES + 1):
        r = timed(plan, work, n)
        if fits(r) and fits_memory(n):
            tips.append(f"{n} nodes of {per_node} GPUs ({duration(r.total_seconds)}, {r.gpu_hours:,.0f} GPU-h)")
            break
    for epochs in range(math.ceil(plan.epochs) - 1, 0, -1):
        r = timed(replace(plan, epochs=float(epochs)), work, nodes)
        if fits(r):
            tips.append(f"num_epochs: {epochs} ({duration(r.total_seconds + training_waits(evals, r, plan.epochs))})")
            break
    if work.counted is not None:
        for seq in (plan.seq_len // 2, plan.seq_len // 4):
            shorter = replace(plan, seq_len=seq)
            try:
                w = from_lengths(shorter, work.counted, work.how)
            except PreflightError:
                continue
            r = timed(shorter, w, nodes)
            if fits(r):
                tips.append(f"sequence_len: {seq} ({w.tokens:,.0f} tokens/epoch left, {duration(r.total_seconds)})")
                break
    found = token_budget(plan, work, timed, fits, nodes)
    if found is None:
        waits = training_waits(evals, timed(plan, scaled(work, 1e-9), nodes), plan.epochs)
        tips.append(
            f"no token budget: the per-epoch evals alone keep training waiting {duration(waits)}, over the budget"
            if waits
            else "no token budget fits"
        )
    else:
        tokens, rows = found
        rows_note = f"{rows:,} rows, " if rows is not None else ""
        check = f"--tokens-per-epoch {tokens}" + (f" --rows-per-epoch {rows}" if rows is not None else "")
        tips.append(
            f"a token budget of {tokens:,} tokens per epoch for the mixture ({rows_note}{tokens / work.tokens:.0%} "
            f"of {work.tokens:,.0f}; prep's select step; {check} checks it)"
        )
    return "fits: " + "; or ".join(tips)
