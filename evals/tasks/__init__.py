"""Offline copies of lm-eval's `mmlu` and `hellaswag` tasks that read the real rows from local files.

Pass this directory as lm-eval's `include_path` and the data directory as the task metadata key
`data_dir` (`lm_eval --include_path DIR --metadata '{"data_dir": "../shared/data"}'`); the task files
carry no machine paths. Prompts, choices, few-shot rules and metrics are lm-eval's own.
"""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent

# lm-eval's hub task -> its offline twin shipped here
LOCAL_TWIN = {"mmlu": "mmlu_local", "hellaswag": "hellaswag_local"}


def resolve_data_dir(data_dir: str | None, task: str) -> Path:
    """The directory holding `mmlu/` and `hellaswag/`, from the task metadata key `data_dir`."""
    if not data_dir:
        raise ValueError(
            f"{task}: no data directory; pass the task metadata key data_dir "
            "(lm_eval --metadata '{\"data_dir\": DIR}', or epoch_eval.task_data_dir)"
        )
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{task}: data directory {path} does not exist")
    return path
