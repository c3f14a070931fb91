"""`curation.select`: the budget and how variety and quality are measured."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Budget(BaseModel):
    """Exactly one of `rows` or `tokens`; the selection never exceeds it."""

    model_config = ConfigDict(extra="forbid")

    rows: int | None = Field(None, ge=1)
    tokens: int | None = Field(
        None, ge=1, description="tokens in the recipes' chat template (prep/tokens.py); needs curation.tokenizer"
    )

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if (self.rows is None) == (self.tokens is None):
            raise ValueError("give the budget as either `rows: N` or `tokens: N`")
        return self


class EmbedConfig(BaseModel):
    """How prompts become vectors for clustering. `hashing` (default, CPU, no model): the prompt's words,
    stop words out, TF-IDF over the corpus, TruncatedSVD; `sentence_transformers`: a model, on a GPU if any."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["hashing", "sentence_transformers"] = "hashing"
    dim: int = Field(64, ge=2, le=512, description="SVD components (hashing backend)")
    terms: int = Field(32, ge=4, le=255, description="distinct prompt words kept per row (a consistent sample)")
    model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", description="hub id or local dir (sentence_transformers backend)"
    )
    device: str | None = Field(None, description="torch device; default cuda when there is one, else cpu")
    batch_size: int = Field(256, ge=1)
    max_tokens: int = Field(256, ge=8, description="prompts are cut to this many tokens for the model")


class ScoreWeights(BaseModel):
    """Weights of the documented quality signals, each in [0, 1] (see prep/select/score.py)."""

    model_config = ConfigDict(extra="forbid")

    teacher: float = Field(0.3, ge=0, description="gpt-4 1, other or unknown 0.5, gpt-3.5 0")
    substance: float = Field(0.35, ge=0, description="answer words relative to the question's")
    complexity: float = Field(0.2, ge=0, description="instruction length: Evol-Instruct depth shows as added words")
    turns: float = Field(0.15, ge=0, description="multi-turn conversations")


class ScorerConfig(BaseModel):
    """A model's judgement of each kept-so-far row, off by default (a GPU job for millions of rows):
    `reward` is a sequence-classification reward model (one logit), `deita` Deita's quality scorer (a causal
    LM whose next-token distribution over 1..6 gives the expected score), `ifd` the instruction-following
    difficulty of a small causal LM (prep/select/ifd.py). Never remote code."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["reward", "deita", "ifd"]
    model: str = Field(description="hub id or local dir")
    weight: float = Field(1.0, ge=0, description="weight of the model's rank-normalized score next to the signals")
    device: str | None = None
    batch_size: int = Field(16, ge=1)
    max_tokens: int = Field(1024, ge=16, description="longer rows are cut for scoring")
    max_ifd: float = Field(
        1.0, gt=0, description="ifd: rows at or above it are dropped as misaligned (`select_misaligned`; the papers: 1)"
    )
    prefer: Literal["aligned", "difficult"] = Field(
        "aligned",
        description="ifd: rank lower IFD first (the answer follows from the instruction) or higher first (the "
        "papers' 'difficult' rows); measured: with a 135M model, IFD just under 1 marks swapped answers",
    )

    @model_validator(mode="after")
    def _ifd_keys(self) -> ScorerConfig:
        if self.kind != "ifd" and ("max_ifd" in self.model_fields_set or "prefer" in self.model_fields_set):
            raise ValueError("max_ifd and prefer are keys of `kind: ifd`")
        return self


class SelectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget: Budget | None = Field(None, description="without a budget the step clusters and scores, and keeps all")
    clusters: int | None = Field(
        None, ge=2, le=4096, description="k of k-means; default sqrt(rows / 10), between 2 and 256"
    )
    alpha: float = Field(
        0.5, gt=0, le=1, description="cluster quota proportional to size**alpha: < 1 shrinks large clusters most"
    )
    fit_rows: int = Field(100_000, ge=100, description="rows the SVD and k-means are fitted on (a seeded sample)")
    embed: EmbedConfig = Field(default_factory=lambda: EmbedConfig())
    weights: ScoreWeights = Field(default_factory=lambda: ScoreWeights())
    scorer: ScorerConfig | None = None
    score_scope: Literal["source", "corpus"] = Field(
        "source",
        description="source: a row's score is its rank among its own source's rows, so every source's best rows "
        "compete alike; corpus: the scores compared as they are across sources",
    )
    floors: dict[str, float] = Field(
        default_factory=dict,
        description="per source, the share of its rows entering select that is kept whatever the scores "
        "(as far as the budget goes): {source: 0.2}",
    )

    @field_validator("floors")
    @classmethod
    def _shares(cls, floors: dict[str, float]) -> dict[str, float]:
        if bad := {k: v for k, v in floors.items() if not 0 < v <= 1}:
            raise ValueError(f"floors are shares in (0, 1]: {bad}")
        return floors
