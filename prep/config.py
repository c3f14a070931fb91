"""The mixture YAML: which sources to read and how, and the curation steps. Unknown keys are errors, so a typo
cannot be ignored. The registries it checks names against (formats, steps) are imported here, at the top:
none of what they register imports this module."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prep.adapters import ADAPTERS
from prep.errors import PrepError, registered, validation_message
from prep.mixture import MixConfig
from prep.source import SourceConfig
from prep.steps import check_steps, section_config
from prep.yamlio import load_yaml

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
        return check_steps(steps)

    @model_validator(mode="after")
    def _sections(self) -> CurationConfig:
        given = self.__pydantic_extra__ or {}
        sections = {name: section_config(name, given.get(name, {})) for name in self.steps}
        sections |= {name: section_config(name, given[name]) for name in given if name not in sections}
        self.__pydantic_extra__ = sections  # the listed steps' in order, with their defaults, then the others
        return self

    def section(self, step: str) -> BaseModel:
        """The config of `step`: its section, or its defaults."""
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
    def _known_formats(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        for i, source in enumerate(sources):
            try:
                registered(source.format, ADAPTERS, "format")
            except ValueError as e:
                raise ValueError(f"sources[{i}].format: {e}") from None
        return sources

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
