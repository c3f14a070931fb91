"""Loads the HellaSwag validation rows (their local layout: prep/benchmarks/hellaswag.py); `process_docs` is
lm-eval's own, so queries and endings are cleaned identically."""

from __future__ import annotations

import datasets
from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401  (named by hellaswag_local.yaml)

from evals.tasks import resolve_data_dir
from prep.benchmarks import hellaswag


def load_hellaswag(data_dir: str | None = None, **_metadata) -> datasets.DatasetDict:
    path = resolve_data_dir(data_dir, "hellaswag_local") / hellaswag.SAMPLE
    return datasets.DatasetDict({"validation": datasets.Dataset.from_list(hellaswag.read_sample(path))})
