"""The epoch's scores where users already look: the W&B run, the tensorboard log directory and the trackio run
the training enabled (Axolotl's `use_wandb`/`wandb_*`, `use_tensorboard`, `use_trackio`), at that epoch's global
step, in every mode.

Training records where its trackers write (`Trackers`, in eval_reports/training.json and in every job); the
epoch's scores are logged as `epoch_eval/<task>/<metric>` by a process that opens the run, logs and closes it:
the `evals run` of a queue watcher or a Slurm job, or in same_node mode a short child of the training process
(`python -m evals.trackers`). Not the training's own open W&B run: W&B writes a run's data out when the run
finishes, so a kill -9 of the training (measured: 3 logged rows, then 5 s, then SIGKILL: none on disk) would
lose the scores of the epochs since it started; a closed run has them on disk. The W&B x-axis is
`train/global_step`, the step metric the HF Trainer's W&B callback defines, so the scores line up with the loss.
Another process joins the training's W&B run by its id: in W&B's shared mode when online (several writers, one
run), resumed when offline (one offline run directory per writer, synced into the same run). Tensorboard gets
an event file of its own in the training's log directory. A tracker that fails is logged as a warning: the
report on disk is the record.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from evals.environment import child_environment

LOG = logging.getLogger(__name__)
STEP = "train/global_step"  # the HF Trainer's W&B step metric


class WandbRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    project: str | None = None
    entity: str | None = None
    dir: str | None = None  # the directory W&B writes its `wandb/` folder under (offline runs live there)
    offline: bool = False


class TrackioRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str
    name: str
    space_id: str | None = None


class Trackers(BaseModel):
    """Where the training's trackers write; what an eval job needs to log an epoch's scores there too."""

    model_config = ConfigDict(extra="forbid")

    wandb: WandbRun | None = None
    tensorboard: str | None = None  # the training's tensorboard log directory
    trackio: TrackioRun | None = None

    def __bool__(self) -> bool:
        return bool(self.wandb or self.tensorboard or self.trackio)


def scores(report: dict) -> dict[str, float]:
    """`epoch_eval/<task>/<metric>` of every scored task, and the count of failed ones."""
    out: dict[str, float] = {
        f"epoch_eval/{name}/{t['metric']}": t["value"] for name, t in report["tasks"].items() if t["status"] == "ok"
    }
    out["epoch_eval/failed_tasks"] = sum(t["status"] != "ok" for t in report["tasks"].values())
    return out


def _wandb(run: WandbRun, values: dict[str, float], step: int, label: str) -> None:
    import wandb

    offline = run.offline or os.environ.get("WANDB_MODE") in ("offline", "dryrun")
    settings = None if offline else wandb.Settings(mode="shared", x_primary=False, x_label=label)
    target = wandb.init(
        id=run.id,
        project=run.project,
        entity=run.entity,
        dir=run.dir,
        resume="allow",
        settings=settings,
        mode="offline" if offline else None,
    )
    try:
        target.define_metric(STEP)
        target.define_metric("epoch_eval/*", step_metric=STEP)
        target.log({**values, STEP: step})
    finally:
        target.finish()


def _tensorboard(log_dir: str, values: dict[str, float], step: int) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=log_dir)
    try:
        for key, value in values.items():
            writer.add_scalar(key, value, step)
    finally:
        writer.close()


def _trackio(run: TrackioRun, values: dict[str, float], step: int) -> None:
    import trackio

    trackio.init(project=run.project, name=run.name, space_id=run.space_id, resume="allow")
    try:
        trackio.log({**values, STEP: step}, step=step)
    finally:
        trackio.finish()


def log_scores(trackers: Trackers | None, report: dict, label: str) -> list[str]:
    """Log one epoch's report to every tracker the training enabled; returns the trackers written. `label`
    names this writer (W&B's shared mode shows it)."""
    if not trackers:
        return []
    values, step = scores(report), int(report["global_step"])
    written = []
    writers: list[tuple[str, Any]] = [
        ("wandb", (lambda: _wandb(trackers.wandb, values, step, label)) if trackers.wandb else None),
        ("tensorboard", (lambda: _tensorboard(trackers.tensorboard, values, step)) if trackers.tensorboard else None),
        ("trackio", (lambda: _trackio(trackers.trackio, values, step)) if trackers.trackio else None),
    ]
    for name, write in writers:
        if write is None:
            continue
        try:
            write()
            written.append(name)
        except Exception as exc:  # the report on disk holds the scores; a tracker outage must not lose the epoch
            LOG.warning("epoch_eval: epoch %s: could not log to %s: %s", report["epoch"], name, exc)
    if written:
        LOG.info("epoch_eval: epoch %s scores logged to %s at step %d", report["epoch"], ", ".join(written), step)
    return written


def from_trainer(trainer) -> Trackers:
    """Where this Trainer's tracker callbacks write (read after their on_train_begin set them up)."""
    from transformers.integrations import TensorBoardCallback, TrackioCallback, WandbCallback

    found = Trackers()
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, WandbCallback) and getattr(callback, "_wandb", None) is not None:
            run = callback._wandb.run
            if run is not None:
                found.wandb = WandbRun(
                    id=run.id,
                    project=run.project,
                    entity=run.entity or None,
                    dir=run.settings.root_dir,
                    offline=run.settings._offline,
                )
        elif isinstance(callback, TensorBoardCallback) and callback.logging_dir:
            found.tensorboard = os.path.abspath(callback.logging_dir)
        elif isinstance(callback, TrackioCallback) and getattr(callback, "_initialized", False):
            args = trainer.args
            found.trackio = TrackioRun(
                project=args.project, name=args.run_name, space_id=getattr(args, "trackio_space_id", None)
            )
    return found


def log_in_child(trackers: Trackers, report_path: Path, label: str) -> None:
    """`log_scores` in a short child process (a clean environment): for the training process, whose own tracker
    runs stay open until training ends."""
    if not trackers:
        return
    done = subprocess.run(
        [sys.executable, "-m", "evals.trackers", str(report_path), trackers.model_dump_json(), label],
        env=child_environment(os.environ),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        LOG.warning("epoch_eval: logging %s to the trackers failed: %s", report_path, done.stderr[-2000:])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("evals").setLevel(logging.INFO)
    report_file, trackers_json, writer = sys.argv[1:4]
    log_scores(Trackers.model_validate_json(trackers_json), orjson.loads(Path(report_file).read_bytes()), writer)
