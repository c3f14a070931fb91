"""The mixture config's `curation.steps`, in order, as row filters and corpus steps for the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from prep.config import MixtureConfig
from prep.lengths import LengthStats


class Reporter(Protocol):
    name: str

    def report(self) -> dict[str, Any]: ...


@dataclass
class Curation:
    lengths: LengthStats
    filters: list = field(default_factory=list)  # RowFilter
    corpus_steps: list = field(default_factory=list)  # CorpusStep
    reporters: list[Reporter] = field(default_factory=list)  # row filters with a manifest section


def curation_steps(config: MixtureConfig, progress: bool = True) -> Curation:
    # imports here: each step pulls in its own libraries (rensa, scipy, torch) only when configured
    from prep.filters.quality import Boilerplate, EmptyTurn, Length, TokenCounter, Truncated

    cur = config.curation
    counter = TokenCounter(cur.tokenizer)
    steps = Curation(lengths=LengthStats(counter))
    for name in cur.steps:
        if name == "quality":
            steps.filters += [
                EmptyTurn(),
                Boilerplate(cur.quality),
                Truncated(cur.quality),
                Length(cur.quality, counter),
            ]
        elif name == "language":
            from prep.filters.language import Language

            steps.filters.append(Language(cur.language))
        elif name == "decontam":
            from prep.decontam.filter import Decontam

            decontam = Decontam(cur.decontam, progress=progress)
            steps.filters.append(decontam)
            steps.reporters.append(decontam)
        elif name == "exact_dedup":
            from prep.dedup.exact import ExactDedup

            steps.corpus_steps.append(ExactDedup())
        elif name == "near_dedup":
            from prep.dedup.near import NearDedup

            steps.corpus_steps.append(NearDedup(cur.near_dedup, seed=config.seed, progress=progress))
        elif name == "semantic_dedup":
            from prep.dedup.semantic import SemanticDedup

            steps.corpus_steps.append(SemanticDedup(cur.semantic_dedup, progress=progress))
        elif name == "mixture":
            from prep.mixture import Mixture

            steps.corpus_steps.append(Mixture(cur.mixture, [s.name for s in config.sources], seed=config.seed))
    return steps
