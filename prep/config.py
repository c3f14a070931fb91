"""The mixture YAML: which sources to read and how. Unknown keys are errors, so a typo cannot be ignored."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prep.errors import PrepError, validation_message
from prep.yamlio import load_yaml

__all__ = ["MixtureConfig", "PrepError", "load_config", "registered"]


def registered(name: str, registry: Mapping[str, object], kind: str) -> str:
    """`name` if `registry` has it, else a ValueError listing the known names."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {list(registry)}")
    return name


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

    @field_validator("format")
    @classmethod
    def _known_format(cls, format: str) -> str:
        from prep.adapters import ADAPTERS

        return registered(format, ADAPTERS, "format")


DEFAULT_STEPS = ["quality", "language", "exact_dedup", "near_dedup", "mixture"]


class CurationConfig(BaseModel):
    """`steps` in order, plus one section per step named after it, holding that step's keys (its `Config`,
    defined next to the step; prep/steps.py lists the steps). A key that is not a step is an error."""

    model_config = ConfigDict(extra="allow")

    steps: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STEPS),
        validate_default=True,
        description="the order steps run in; leave one out to skip it. `quality` stands for its five steps. "
        "decontam needs its benchmarks named, so it runs only when listed (both shipped mixtures list it)",
    )
    tokenizer: str | None = Field(None, description="hub id or local dir; lengths count tokens when set")
    warn_source_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="warn when a step after the dedups leaves a source below this share of the rows it had after "
        "them (a step that leaves a source with no row always warns)",
    )

    @field_validator("steps")
    @classmethod
    def _order(cls, steps: list[str]) -> list[str]:
        from prep.steps import check_steps

        return check_steps(steps)

    @model_validator(mode="after")
    def _sections(self) -> CurationConfig:
        from prep.steps import section_config

        given = self.__pydantic_extra__ or {}
        sections = {name: section_config(name, given.get(name, {})) for name in self.steps}
        sections |= {name: section_config(name, given[name]) for name in given if name not in sections}
        self.__pydantic_extra__ = sections  # the listed steps' in order, with their defaults, then the others
        return self

    def section(self, step: str) -> BaseModel:
        """The config of `step`: its section, or its defaults."""
        from prep.steps import section_config

        extra = self.__pydantic_extra__ or {}
        return extra[step] if step in extra else section_config(step, {})


class MixtureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(
        42, ge=0, lt=2**32, strict=True, description="numpy and MinHash take unsigned 32-bit seeds (`true` is no seed)"
    )
    sources: list[SourceConfig] = Field(min_length=1)
    curation: CurationConfig = Field(default_factory=lambda: CurationConfig())

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return sources

    @model_validator(mode="after")
    def _mixture_names_sources(self) -> MixtureConfig:
        if "mixture" not in self.curation.steps and "mixture" not in (self.curation.model_extra or {}):
            return self
        from prep.mixture import MixConfig

        names = {s.name for s in self.sources}
        mix = self.curation.section("mixture")
        assert isinstance(mix, MixConfig)
        named = set(mix.sources) | {n for stratum in mix.strata for n in stratum.sources}
        if unknown := sorted(named - names):
            raise ValueError(f"curation.mixture names sources that are not configured: {unknown}")
        return self


def load_config(path: Path) -> MixtureConfig:
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise PrepError(f"{path}: a mixture config is a mapping with `sources:`")
    try:
        return MixtureConfig.model_validate(raw)
    except ValidationError as e:
        raise PrepError(f"{path}: invalid mixture config: {validation_message(e)}") from e
