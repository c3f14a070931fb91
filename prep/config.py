"""The mixture YAML: which sources to read and how. Unknown keys are errors, so a typo cannot be ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Format = Literal["openorca", "evol_instruct", "platypus", "sharegpt", "alpaca"]


class PrepError(Exception):
    """A user-facing error: bad config, bad input file or row (in --strict)."""


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="becomes each row's `source` and id prefix")
    format: Format
    path: str = Field(description="hub dataset id, or a local file, glob or directory")
    data_files: str | list[str] | None = None
    split: str = "train"
    subset: str | None = Field(None, description="hub config name")
    revision: str | None = None
    teacher: str | None = Field(None, description="completion model; inferred from file names when unset")


class MixtureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 42
    sources: list[SourceConfig] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return sources


def load_config(path: Path) -> MixtureConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PrepError(f"{path}: cannot read mixture config: {e}") from e
    if not isinstance(raw, dict):
        raise PrepError(f"{path}: a mixture config is a mapping with `sources:`")
    try:
        return MixtureConfig.model_validate(raw)
    except ValidationError as e:
        raise PrepError(f"{path}: invalid mixture config:\n{e}") from e
