"""Shared fixtures: the real data samples beside the repo, and an offline environment for Axolotl."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for key, value in {"AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
                   "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_OFFLINE": "1"}.items():
    os.environ.setdefault(key, value)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
    if not (path / "README.md").is_file():
        raise FileNotFoundError(f"the real data samples are expected at {path} (set SHARED_DATA to override)")
    return path
