"""What a training run recorded for its evals, in `OUTPUT_DIR/eval_reports/training.json`: the epochs it
will train, each epoch end it reached (the step, the checkpoint), whether the base model is scored, and where its
trackers write. Written by the plugin's main process at the start and at every epoch end, before the
checkpoint is saved, so an epoch killed between its save and its eval is still known.

It is how nothing goes missing unseen: on resume the plugin scores every recorded epoch without an ok report;
`evals status` lists recorded epochs with no report and no job; `evals report` says which are missing.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.errors import EvalsError
from evals.report import REPORTS_DIR
from evals.trackers import Trackers
from prep.outputs import write_json
from prep.paths import special_file

RECORD = "training.json"


class EpochEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    global_step: int = Field(ge=0)
    checkpoint: str


class TrainingRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str
    num_epochs: float
    eval_base_model: bool
    base_model: str
    epochs: dict[int, EpochEnd] = Field(default_factory=dict, description="epoch ends reached, by epoch")
    trackers: Trackers = Field(default_factory=Trackers)

    def expected(self) -> list[int]:
        """The epochs that should have a report by now: the base model's (0) and every epoch end reached."""
        return sorted({*([0] if self.eval_base_model else []), *self.epochs})


def record_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / REPORTS_DIR / RECORD


def load(output_dir: str | Path) -> TrainingRecord | None:
    """The run's record; None when training never wrote one (a run from before, or no training yet)."""
    path = record_path(output_dir)
    if (odd := special_file(path)) is not None:
        raise EvalsError(f"{path}: {odd}; remove it to go on")
    try:
        return TrainingRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        raise EvalsError(f"{path}: not a training record: key {where}: {err['msg']}; remove it to go on") from exc


def save(output_dir: str | Path, record: TrainingRecord) -> Path:
    path = record_path(output_dir)
    write_json(path, record.model_dump(mode="json"))
    return path
