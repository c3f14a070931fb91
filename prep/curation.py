"""The curation a config asks for: its steps built in order, then the statistics that apply, with what they
share (the seed, the sources, the token counter), before any data is read."""

from __future__ import annotations

from dataclasses import dataclass, field

from prep.config import MixtureConfig
from prep.lengths import TokenCounter
from prep.step import Context, CorpusStep, RowFilter, Stats, Step
from prep.steps import CORPUS_STEPS, ROW_FILTERS, STATS


@dataclass
class Curation:
    filters: list[RowFilter] = field(default_factory=list)
    corpus_steps: list[CorpusStep] = field(default_factory=list)  # the ones that drop rows
    stats: list[Stats] = field(default_factory=list)

    def on_corpus(self) -> list[CorpusStep]:
        """What works on the whole corpus, in order: the corpus steps, then the statistics on what they keep."""
        return [*self.corpus_steps, *self.stats]

    def all(self) -> list[Step]:
        return [*self.filters, *self.on_corpus()]


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
    steps = Curation()
    for name in cur.steps:
        if name in ROW_FILTERS:
            steps.filters.append(ROW_FILTERS[name](cur.section(name), context))
        else:
            steps.corpus_steps.append(CORPUS_STEPS[name](cur.section(name), context))
    steps.stats = [stat(None, context) for stat in STATS.values() if stat.applies(context)]
    return steps
