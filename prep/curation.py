"""The curation a config asks for: its steps built in order, with what they share (the seed, the sources, the
token counter), before any data is read."""

from __future__ import annotations

from dataclasses import dataclass, field

from prep.config import MixtureConfig
from prep.lengths import LengthStats, TokenCounter
from prep.step import Context, CorpusStep, RowFilter, Step
from prep.steps import CORPUS_STEPS, ROW_FILTERS


@dataclass
class Curation:
    lengths: LengthStats
    filters: list[RowFilter] = field(default_factory=list)
    corpus_steps: list[CorpusStep] = field(default_factory=list)

    def all(self) -> list[Step]:
        return [*self.filters, *self.corpus_steps]


def curation_steps(config: MixtureConfig, progress: bool = True, explain: bool = False) -> Curation:
    """The configured steps, built in order: a step that cannot run fails here, before any data is read.
    `explain`: the build writes --dropped, so steps that can say per drop why do."""
    cur = config.curation
    counter = TokenCounter(cur.tokenizer)
    context = Context(
        seed=config.seed,
        sources=tuple(s.name for s in config.sources),
        progress=progress,
        counter=counter,
        explain=explain,
    )
    steps = Curation(lengths=LengthStats(counter))
    for name in cur.steps:
        if name in ROW_FILTERS:
            steps.filters.append(ROW_FILTERS[name](cur.section(name), context))
        else:
            steps.corpus_steps.append(CORPUS_STEPS[name](cur.section(name), context))
    return steps
