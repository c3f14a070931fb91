"""`evals`: per-epoch eval reports (tables, best epoch, plot), the queue watcher, and one-off job runs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from evals.errors import EvalsError
from evals.spec import EvalJob
from prep.cli_errors import CommandGroup
from prep.cli_types import FiniteFloatRange
from prep.errors import PrepError

# tables are wide (a column per task, MMLU twice): wrap them at the terminal's width, not at 80 in a pipe
console = Console(width=None if sys.stdout.isatty() else 200)


class Group(CommandGroup):
    """prep's error path (prep.cli_errors): user errors (EvalsError, PrepError, a file that cannot be read) end
    in one line, `--debug` shows the traceback. SIGTERM keeps its default: `evals watch` waits on an eval
    child, which dies with it (PR_SET_PDEATHSIG), and which an exception would wait for."""

    fixable = (EvalsError, PrepError, OSError)
    catch_signals = False
    after_signal = "."


@click.group(cls=Group)
@click.option("-v", "--verbose", is_flag=True, help="log at INFO (lm-eval is chatty)")
@click.option("--debug", is_flag=True, help="show the traceback of an error")
def main(verbose: bool, debug: bool) -> None:
    """Per-epoch MMLU/HellaSwag reports written by the epoch_eval Axolotl plugin."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("evals").setLevel(logging.INFO)


@main.command()
@click.argument("output_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="where summary.md and convergence.png go; default OUTPUT_DIR/eval_reports for one run",
)
def report(output_dirs: tuple[Path, ...], out: Path | None) -> None:
    """Tables per epoch (and across runs), the best epoch, summary.md and convergence.png."""
    from evals.published import HARNESS_GAP, comparability
    from evals.report import REPORTS_DIR
    from evals.summary import best_line, failures, load_runs, rows, settings_line, write_summary

    if out is None:
        if len(output_dirs) > 1:
            raise click.UsageError("several runs: say where the combined summary goes with --out")
        out = output_dirs[0] / REPORTS_DIR
    runs = load_runs(list(output_dirs))
    for run in runs:
        header, body = rows(run)
        table = Table(title=f"{run.name} ({run.output_dir})")
        for h in header:
            table.add_column(h, justify="right" if h not in ("status",) else "left")
        for row in body:
            style = "bold green" if row[0].endswith("*") else "bold red" if row[-1].startswith("MISSING") else None
            table.add_row(*row, style=style)
        console.print(table)
        console.print(settings_line(run.reports[0]))
        for note in run.notes:
            console.print(f"[yellow]note: {note}[/yellow]")
        for line in comparability(run.reports[0]):
            console.print(f"comparable: {line}")
        for line in failures(run):
            console.print(f"[red]{line}[/red]")
        console.print(best_line(run), style="bold red" if run.missing else None)
    console.print(HARNESS_GAP)
    md, png = write_summary(runs, out)
    console.print(f"wrote {md} and {png}")


@main.command()
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--poll",
    default=30.0,
    show_default=True,
    type=FiniteFloatRange(min=0.1),
    help="seconds between looks at the queue (at least 0.1)",
)
@click.option("--once", is_flag=True, help="run what is pending now, then exit")
@click.option(
    "--lease",
    default=300.0,
    show_default=True,
    type=FiniteFloatRange(min=1),
    help="seconds without renewal after which another watcher takes a running job over",
)
def watch(output_dir: Path, poll: float, once: bool, lease: float) -> None:
    """Run the eval jobs a training run queues in OUTPUT_DIR/eval_queue (epoch_eval mode: queue)."""
    from evals.queue import watch as run_watch

    ran = run_watch(output_dir, poll_s=poll, once=once, lease_s=lease)
    console.print(f"ran {len(ran)} job(s): " + ", ".join(f"epoch {r['epoch']} {r['status']}" for r in ran))


@main.command()
@click.argument("job", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def run(job: Path) -> None:
    """Score one checkpoint from a job file and write its epoch report."""
    from evals.jobs import die_with_parent, run_job

    die_with_parent()
    console.print(f"wrote {run_job(EvalJob.load(job))}")


@main.command()
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--resubmit", is_flag=True, help="slurm mode: resubmit jobs that ended without a report first")
def status(output_dir: Path, resubmit: bool) -> None:
    """Every epoch's eval: queued, running, done or failed, with the scheduler's state and the log."""
    from evals import slurm
    from evals.status import epochs

    if resubmit:
        slurm.reconcile(output_dir)
    rows = epochs(output_dir)
    table = Table(title=f"evals of {output_dir}")
    for h in ("epoch", "state", "report", "scheduler", "job", "tries", "log", "checkpoint"):
        table.add_column(h, overflow="fold")
    colour = {"done": "green", "failed": "red", "running": "yellow", "queued": "blue", "unscored": "magenta"}
    for r in rows:
        table.add_row(
            str(r.epoch), f"[{colour[r.state]}]{r.state}[/]", r.report, r.scheduler, r.job_id,
            str(r.attempts), r.log, r.checkpoint,
        )  # fmt: skip
    console.print(table)
    counts = {s: sum(r.state == s for r in rows) for s in colour}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))


@main.command()
def tasks() -> None:
    """Print the offline task directory (lm-eval --include_path) and how to use it."""
    from evals.tasks import LOCAL_TWIN, TASKS_DIR

    click.echo(TASKS_DIR)
    click.echo(
        f"tasks: {', '.join(LOCAL_TWIN.values())} (offline twins of {', '.join(LOCAL_TWIN)}); "
        f'lm_eval --include_path {TASKS_DIR} --metadata \'{{"data_dir": "DATA_DIR"}}\' ...',
        err=True,
    )


if __name__ == "__main__":
    main()
