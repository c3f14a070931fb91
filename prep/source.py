"""One source of a mixture: where its records are and how to read them. Its `format` names an adapter
(prep/adapters), which the mixture config checks: this module imports nothing of prep, so the adapters and
the readers can take a SourceConfig without importing the config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

RESERVED_NAMES = {"unit"}  # keys beside the sources' in manifest sections keyed by source


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="becomes each row's `source` and id prefix")
    format: str = Field(description="the adapter that shapes its records into rows (prep/adapters)")
    path: str = Field(description="hub dataset id, or a local file, glob or directory")
    data_files: str | list[str] | None = None
    split: str = "train"
    subset: str | None = Field(None, description="hub config name")
    revision: str | None = None
    teacher: str | None = Field(None, description="completion model; inferred from file names when unset")
    licence: str | None = Field(None, description="the dataset card's licence id (mit, apache-2.0, cc-by-nc-4.0, ...)")
    shares_files: bool = Field(
        False,
        description="read files an earlier source also reads, on purpose (to upsample them, say); without it a "
        "file named by two sources is an error, since each would add every row again",
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(
                f"{name!r} is reserved (the manifest's `lengths` has a key of that name); rename the source"
            )
        return name
