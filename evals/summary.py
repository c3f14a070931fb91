"""Turn per-epoch reports into what a person reads: a table per run, the best epoch, summary.md and a
convergence plot.

Best epoch rule: the highest mean, over the run's tasks, of each task's tracked metric (MMLU acc,
HellaSwag acc_norm by default), among epochs where every task scored; a tie goes to the earlier epoch.
Epoch 0 (the base model, when evaluated) competes too: if it wins, training did not help.

Missing epochs: an epoch training recorded (eval_reports/training.json) without a report is listed, in the table
and the summary, with where its eval stands (queued, running, unscored); a best epoch picked from such an
incomplete run says that it is the best among the scored epochs only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from evals.errors import EvalsError
from evals.published import HARNESS_GAP, comparability
from evals.report import REPORTS_DIR, read_reports
from prep.outputs import atomic_output

BEST_RULE = (
    "best epoch = highest mean of the tracked metrics over all tasks, among epochs where every "
    "task scored; ties go to the earlier epoch"
)


@dataclass
class Run:
    name: str
    output_dir: Path
    reports: list[dict]
    missing: dict[int, str] = field(default_factory=dict)  # epoch -> where its eval stands (no report yet)

    @property
    def notes(self) -> list[str]:
        """Flags that do not stop the report: a run whose reports name another directory (moved)."""
        recorded = {str(r["output_dir"]) for r in self.reports if r.get("output_dir")}
        here = str(self.output_dir.resolve())
        return [f"reports were written for {d} (a moved or copied run?)" for d in sorted(recorded) if d != here]

    @property
    def subject_means(self) -> list[str]:
        """Group tasks whose reports carry the plain mean over their subtasks (MMLU's 57 subjects)."""
        return [t for t in self.tasks if any("subtask_mean" in r["tasks"].get(t, {}) for r in self.reports)]

    @property
    def tasks(self) -> list[str]:
        return sorted({name for r in self.reports for name in r["tasks"]})

    def best(self) -> dict | None:
        complete = [
            r
            for r in self.reports
            if r["tasks"]
            and set(self.tasks) <= set(r["tasks"])
            and all(t["status"] == "ok" for t in r["tasks"].values())
        ]
        if not complete:
            return None
        return max(complete, key=lambda r: (mean_score(r), -r["epoch"]))


def best_line(run: Run) -> str:
    """The best epoch, and whether the run is complete enough to call it that."""
    best = run.best()
    if best is None:
        return f"best epoch: none  ({BEST_RULE})"
    line = f"best epoch: {best['epoch']}  ({BEST_RULE})"
    if run.missing:
        gaps = ", ".join(f"{e} ({why})" for e, why in sorted(run.missing.items()))
        line += f"; INCOMPLETE RUN: the best among the scored epochs only, epoch(s) {gaps} have no report"
    return line


def missing_epochs(output_dir: Path, reported: set[int]) -> dict[int, str]:
    """Epochs training recorded that have no report yet, with the state of their eval."""
    from evals.status import epochs
    from evals.training import load

    record = load(output_dir)
    if record is None:
        return {}
    state = {r.epoch: r.state for r in epochs(output_dir, query=False)}
    return {e: state.get(e, "unscored") for e in record.expected() if e not in reported}


def mean_score(report: dict) -> float:
    values = [t["value"] for t in report["tasks"].values()]
    return sum(values) / len(values)


def load_runs(output_dirs: list[Path]) -> list[Run]:
    runs = []
    for d in output_dirs:
        reports = read_reports(d)
        if not reports:
            raise EvalsError(f"no reports in {d / REPORTS_DIR} (expected epoch_<n>.json)")
        missing = missing_epochs(d, {r["epoch"] for r in reports})
        runs.append(Run(name=d.resolve().name, output_dir=d, reports=reports, missing=missing))
    names = [r.name for r in runs]
    for run in runs:  # two runs both called `out`: tell them apart by their parent
        if names.count(run.name) > 1:
            run.name = f"{run.output_dir.resolve().parent.name}/{run.name}"
    return runs


def cell(task: dict | None) -> str:
    if task is None:
        return "-"
    if task["status"] != "ok":
        return "FAILED"
    err = f" ± {task['stderr']:.4f}" if task.get("stderr") is not None else ""
    return f"{task['value']:.4f}{err}"


def subject_mean_cell(task: dict | None) -> str:
    if task is None or task["status"] != "ok" or "subtask_mean" not in task:
        return "-"
    return f"{task['subtask_mean']:.4f}"


def rows(run: Run) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a run's per-epoch table; the best epoch is starred. A group task (MMLU) also
    gets its plain subject mean, the older harness's (Open LLM Leaderboard v1) MMLU."""
    best = run.best()
    metric = {t: next(r["tasks"][t]["metric"] for r in run.reports if t in r["tasks"]) for t in run.tasks}
    header = ["epoch", "step"]
    for t in run.tasks:
        header += [f"{t} {metric[t]}"] + ([f"{t} subject mean"] if t in run.subject_means else [])
    header += ["mean", "status"]
    body = []
    gaps = [{"epoch": e, "missing": why} for e, why in run.missing.items()]
    for r in sorted([*run.reports, *gaps], key=lambda r: r["epoch"]):
        if "missing" in r:
            body.append([str(r["epoch"]), "-", *["-"] * (len(header) - 4), "-", f"MISSING ({r['missing']})"])
            continue
        ok = all(t["status"] == "ok" for t in r["tasks"].values())
        star = " *" if best is not None and r["epoch"] == best["epoch"] else ""
        cells = []
        for t in run.tasks:
            cells += [cell(r["tasks"].get(t))]
            cells += [subject_mean_cell(r["tasks"].get(t))] if t in run.subject_means else []
        body.append(
            [
                f"{r['epoch']}{star}",
                str(r.get("global_step", "-")),
                *cells,
                f"{mean_score(r):.4f}" if ok else "-",
                r.get("status", "-"),
            ]
        )
    return header, body


def settings_line(report: dict) -> str:
    """What the scores depend on, as the report recorded it."""
    shots = ", ".join(f"{n} {t.get('num_fewshot')}-shot {t['metric']}" for n, t in sorted(report["tasks"].items()))
    return (
        f"{report.get('harness') or 'lm-eval ' + str(report.get('lm_eval_version', '?'))}, backend "
        f"{report.get('backend', '?')}, {shots}, chat template {'on' if report.get('chat_template') else 'off'}, "
        f"batch size {report.get('batch_size', '?')}, dtype {report.get('dtype', '?')}, "
        f"rows per (sub)task {limits(report.get('limit'))}"
    )


def failures(run: Run) -> list[str]:
    return [
        f"epoch {r['epoch']} {name}: {t['error']}"
        for r in run.reports
        for name, t in r["tasks"].items()
        if t["status"] != "ok"
    ]


def markdown(runs: list[Run]) -> str:
    out = [
        "# Per-epoch evaluation",
        "",
        f"Rule: {BEST_RULE}. Rows marked * are the best epoch. Scores "
        "are lm-eval log-likelihood scores without a chat template; ± is lm-eval's stderr.",
        "",
        HARNESS_GAP,
        "",
    ]
    if len(runs) > 1:
        out += [
            "## Best epoch per run",
            "",
            "| run | best epoch | step | mean | missing epochs |",
            "| --- | --- | --- | --- | --- |",
        ]
        for run in runs:
            b = run.best()
            gaps = ", ".join(f"{e} ({why})" for e, why in sorted(run.missing.items())) or "none"
            out.append(
                f"| {run.name} | {b['epoch']} | {b.get('global_step', '-')} | {mean_score(b):.4f} | {gaps} |"
                if b
                else f"| {run.name} | none (no epoch scored every task) | - | - | {gaps} |"
            )
        out.append("")
    for run in runs:
        header, body = rows(run)
        first = run.reports[0]
        out += [
            f"## {run.name}",
            "",
            f"`{run.output_dir}`; {settings_line(first)}",
            "",
            *[f"- {note}" for note in run.notes],
            *[f"- comparable: {line}" for line in comparability(first)],
            "",
            "| " + " | ".join(header) + " |",
            "|" + " --- |" * len(header),
        ]
        out += ["| " + " | ".join(row) + " |" for row in body]
        out += ["", best_line(run), ""]
        if fails := failures(run):
            out += ["Failures:", "", *[f"- {f}" for f in fails], ""]
    return "\n".join(out)


def plot(runs: list[Run], path: Path) -> Path:
    """One panel per task: the tracked metric by epoch with stderr bars, one line per run, best epoch ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(t for run in runs for t in run.tasks))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        metric = next(r["tasks"][task]["metric"] for run in runs for r in run.reports if task in r["tasks"])
        plotted = False
        for run in runs:
            pts = [
                (r["epoch"], r["tasks"][task])
                for r in run.reports
                if task in r["tasks"] and r["tasks"][task]["status"] == "ok"
            ]
            if not pts:
                continue
            plotted = True
            line = ax.errorbar(
                [e for e, _ in pts],
                [t["value"] for _, t in pts],
                yerr=[t.get("stderr") or 0.0 for _, t in pts],
                marker="o",
                capsize=3,
                label=run.name,
            )
            best = run.best()
            if best is not None and task in best["tasks"]:
                ax.plot(
                    [best["epoch"]],
                    [best["tasks"][task]["value"]],
                    marker="o",
                    markersize=14,
                    markerfacecolor="none",
                    color=line[0].get_color(),
                )
        if plotted:
            ax.legend(fontsize=8)
        else:
            ax.text(
                0.5,
                0.5,
                "no successful score\n(see summary.md)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="tab:red",
            )
        ax.set_title(f"{task} ({metric})")
        ax.set_xlabel("epoch (0 = base model)")
        ax.set_ylabel(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    fig.suptitle("Convergence: lm-eval scores after each epoch (ringed: best epoch)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    with atomic_output(path) as f:
        f.write(buf.getvalue())
    return path


def write_summary(runs: list[Run], out_dir: Path) -> tuple[Path, Path]:
    md = out_dir / "summary.md"
    with atomic_output(md) as f:
        f.write(markdown(runs).encode())
    return md, plot(runs, out_dir / "convergence.png")


def limits(limit: dict[str, float | None] | float | None) -> str:
    """The per-task row limits a report records ("all" where a task had none)."""
    if not isinstance(limit, dict):
        return "all" if limit is None else str(limit)
    return ", ".join(f"{task} {'all' if n is None else n}" for task, n in limit.items())
