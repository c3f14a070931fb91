"""The mixture YAML: which sources to read and how. Unknown keys are errors, so a typo cannot be ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


ROW_STEPS = ("quality", "language", "decontam")  # judge one row at a time, as it streams past
CORPUS_STEPS = ("exact_dedup", "near_dedup", "semantic_dedup", "mixture")  # need the whole corpus


class QualityConfig(BaseModel):
    """Rows a model should not learn from: empty turns, boilerplate, cut-off answers, extreme lengths."""

    model_config = ConfigDict(extra="forbid")

    refusals: bool = True
    ai_identity: bool = True
    truncated: bool = True
    truncated_min_words: int = Field(
        10, ge=1, description="a last line this long can be judged cut off; shorter ones are labels like 'Answer: B'"
    )
    min_response_chars: int = Field(1, ge=0)
    max_total_chars: int = Field(24_000, ge=1, description="used when no tokenizer is set (about 6k tokens)")
    min_response_tokens: int = Field(1, ge=0)
    max_total_tokens: int = Field(4096, ge=1, description="the recipes' sequence_len; longer rows would be truncated")


class LanguageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: list[str] = Field(default_factory=lambda: ["en"], min_length=1, description="ISO 639-1 codes to keep")
    min_confidence: float = Field(0.6, ge=0, le=1, description="drop only when another language is this certain")
    sample_chars: int = Field(100, ge=20, description="chars of prompt and of response the identifier reads")


Benchmark = Literal["mmlu", "hellaswag", "arc", "truthfulqa"]


class BenchmarkConfig(BaseModel):
    """Where a benchmark's reference items come from, in the same spirit as a source."""

    model_config = ConfigDict(extra="forbid")

    name: Benchmark
    path: str = Field(description="hub dataset id, or a local file, directory or glob")
    subset: str | None = Field(None, description="hub config name (cais/mmlu: all)")
    split: str = "test"
    revision: str | None = None


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ngram: int = Field(13, ge=4, description="GPT-3 and NeMo Curator use 13-grams")
    min_question_words: int = Field(4, ge=1, description="shorter questions are too generic to match exactly")
    benchmarks: list[BenchmarkConfig] = Field(default_factory=list)


class NearDedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard similarity of the prompts' shingle sets")
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1, description="words (or characters) per shingle")
    num_perm: int = Field(128, ge=16, le=512)


class SemanticDedupConfig(BaseModel):
    """Prompts close in meaning: cosine of their sentence embeddings, as Platypus did with all-MiniLM-L6-v2
    (80% similarity). Runs only when `semantic_dedup` is listed in `steps`; needs the `semantic` extra."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", description="hub id or local dir of a sentence-transformers model"
    )
    threshold: float = Field(0.8, gt=0, lt=1, description="cosine similarity at which two prompts are duplicates")
    device: str | None = Field(None, description="torch device; default cuda when there is one, else cpu")
    batch_size: int = Field(256, ge=1, description="prompts embedded at a time")
    max_tokens: int = Field(256, ge=8, description="prompts are cut to this many tokens for the embedding")


class StratumConfig(BaseModel):
    """Sources pooled and balanced by row fields, so one sub-source cannot swamp the pool."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(min_length=1)
    by: list[Literal["subsource", "teacher"]] = Field(min_length=1)
    max_share: float = Field(gt=0, le=1, description="no stratum keeps more than this share of the pool")


class SourceShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap: int | None = Field(None, ge=0, description="keep at most this many rows")
    weight: float | None = Field(None, gt=0, description="share among the weighted sources")

    @model_validator(mode="after")
    def _one(self) -> SourceShare:
        if (self.cap is None) == (self.weight is None):
            raise ValueError("give a source either `cap` or `weight`")
        return self


class MixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceShare] = Field(default_factory=dict, description="unlisted sources keep all rows")
    strata: list[StratumConfig] = Field(default_factory=list)
    shuffle: bool = True


class CurationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(
        default_factory=lambda: ["quality", "language", "exact_dedup", "near_dedup", "mixture"],
        description="the order steps run in; leave one out to skip it. decontam needs its benchmarks named, so "
        "it runs only when listed (both shipped mixtures list it)",
    )
    tokenizer: str | None = Field(None, description="hub id or local dir; lengths count tokens when set")
    quality: QualityConfig = Field(default_factory=lambda: QualityConfig())
    language: LanguageConfig = Field(default_factory=lambda: LanguageConfig())
    decontam: DecontamConfig = Field(default_factory=lambda: DecontamConfig())
    near_dedup: NearDedupConfig = Field(default_factory=lambda: NearDedupConfig())
    semantic_dedup: SemanticDedupConfig = Field(default_factory=lambda: SemanticDedupConfig())
    mixture: MixConfig = Field(default_factory=MixConfig)

    @field_validator("steps")
    @classmethod
    def _order(cls, steps: list[str]) -> list[str]:
        known = ROW_STEPS + CORPUS_STEPS
        if unknown := [s for s in steps if s not in known]:
            raise ValueError(f"unknown steps {unknown}; known: {list(known)}")
        if len(set(steps)) != len(steps):
            raise ValueError(f"a step is listed twice: {steps}")
        kinds = [s in CORPUS_STEPS for s in steps]
        if kinds != sorted(kinds):
            raise ValueError(f"row steps {list(ROW_STEPS)} must come before corpus steps {list(CORPUS_STEPS)}: {steps}")
        if "mixture" in steps and steps[-1] != "mixture":
            raise ValueError("mixture must be the last step: it samples what the other steps left")
        return steps

    @model_validator(mode="after")
    def _decontam_has_benchmarks(self) -> CurationConfig:
        if "decontam" in self.steps and not self.decontam.benchmarks:
            raise ValueError(
                "steps include decontam but decontam.benchmarks is empty: say where MMLU/HellaSwag come from"
            )
        return self


class MixtureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 42
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
        names = {s.name for s in self.sources}
        mix = self.curation.mixture
        named = set(mix.sources) | {n for stratum in mix.strata for n in stratum.sources}
        if unknown := sorted(named - names):
            raise ValueError(f"curation.mixture names sources that are not configured: {unknown}")
        return self


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
