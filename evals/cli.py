"""`evals`: per-epoch eval reports (tables, best epoch, plot), the queue watcher, and one-off job runs."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from evals.spec import EvalJob

console = Console()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="log at INFO (lm-eval is chatty)")
def main(verbose: bool) -> None:
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
    from evals.report import REPORTS_DIR
    from evals.summary import BEST_RULE, failures, load_runs, rows, write_summary

    if out is None:
        if len(output_dirs) > 1:
            raise click.UsageError("several runs: say where the combined summary goes with --out")
        out = output_dirs[0] / REPORTS_DIR
    try:
        runs = load_runs(list(output_dirs))
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for run in runs:
        header, body = rows(run)
        table = Table(title=f"{run.name} ({run.output_dir})")
        for h in header:
            table.add_column(h, justify="right" if h not in ("status",) else "left")
        for row in body:
            table.add_row(*row, style="bold green" if row[0].endswith("*") else None)
        console.print(table)
        for line in failures(run):
            console.print(f"[red]{line}[/red]")
        best = run.best()
        console.print(f"best epoch: {best['epoch'] if best else 'none'}  ({BEST_RULE})")
    md, png = write_summary(runs, out)
    console.print(f"wrote {md} and {png}")


@main.command()
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--poll", default=30.0, show_default=True, help="seconds between looks at the queue")
@click.option("--once", is_flag=True, help="run what is pending now, then exit")
def watch(output_dir: Path, poll: float, once: bool) -> None:
    """Run the eval jobs a training run queues in OUTPUT_DIR/eval_queue (epoch_eval mode: queue)."""
    from evals.queue import watch as run_watch

    ran = run_watch(output_dir, poll_s=poll, once=once)
    console.print(f"ran {len(ran)} job(s): " + ", ".join(f"epoch {r['epoch']} {r['status']}" for r in ran))


@main.command()
@click.argument("job", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def run(job: Path) -> None:
    """Score one checkpoint from a job file and write its epoch report."""
    from evals.jobs import run_job

    console.print(f"wrote {run_job(EvalJob.load(job))}")


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
