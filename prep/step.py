"""What a curation step is (prep/steps.py lists them). Three kinds, as in datatrove: a row filter judges one row
at a time as it streams past (in the worker processes), a corpus step needs the whole corpus (dedup, mixture),
and a statistic is a corpus step that drops nothing (datatrove's stats are steps too). Each step class names
itself, carries its pydantic `Config` (the keys of its section in `curation:`) and is built from that config
and the build's `Context`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import numpy as np

    from prep.lengths import TokenCounter
    from prep.rows import Row
    from prep.spill import Spill


class NoConfig(BaseModel):
    """The section of a step without keys: `{}` or absent."""

    model_config = ConfigDict(extra="forbid")


Found = TypeVar("Found")


@dataclass(frozen=True)
class Verdict(Generic[Found]):
    """Why a row filter dropped a row: `reason` is the manifest's drop reason, `detail` goes to --dropped, `found`
    what the filter found that its `book` counts (decontam: the item hit), so the main process need not look again."""

    reason: str
    detail: str = ""
    found: Found | None = None


@dataclass(frozen=True)
class Context:
    """What a build gives every step besides its own config."""

    seed: int = 0
    sources: tuple[str, ...] = ()  # the configured source names, in order
    progress: bool = False
    counter: TokenCounter | None = None  # lengths in tokens or chars; shared by length and stats
    explain: bool = False  # the build writes --dropped: a corpus step may say per drop why (which row it copies)


CONTEXT = Context()  # for a step built on its own (tests, benches)
Drop = tuple[int, str] | tuple[int, str, str]  # a spilled row a corpus step drops: (row, reason[, detail])


class Step:
    """What every step has: its name, its config model, the libraries behind its results, the files it read."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]] = NoConfig
    libraries: ClassVar[tuple[str, ...]] = ()  # distributions whose versions change what it drops (manifest)

    def __init__(self, config: Any = None, context: Context = CONTEXT) -> None:
        self.config = config

    def inputs(self) -> dict[str, dict[str, Any]]:
        """What the step read besides the sources (benchmark files, a model file), keyed by its config key and
        shaped as the manifest's `inputs` entries: `{"files": [{path, bytes, sha256}], ...}`. No build may
        write over them, and the manifest lists them so a build can be audited."""
        return {}

    def warnings(self) -> list[str]:
        """What the user must hear about once the step ran (the build prints them, the manifest lists them)."""
        return []


class RowFilter(Step):
    """A check on one row. `check` may run in a worker process, so it keeps no state; `book` runs in the main
    process, in input order, for every row this filter dropped, with the verdict `check` returned: where a
    filter counts what its manifest section (`report`) shows."""

    def check(self, row: Row) -> Verdict | None:
        raise NotImplementedError

    def book(self, row: Row, verdict: Verdict) -> None:
        """Nothing to count by default: the ledger already counts drops by reason."""

    def report(self) -> dict[str, Any] | None:
        """The step's manifest section under `steps`, or None for none."""
        return None


class CorpusStep(Step):
    """A step that needs the whole corpus: `featurize` does the per-row work on a batch of surviving rows (in
    a worker), `observe` keeps the small result per spilled row (main process), `run` then names the spilled
    rows to drop with their reasons, as (row, reason) or, with a detail for the --dropped file, (row, reason,
    detail); `report` is its manifest section under `steps`."""

    shuffles = False  # whether the output is to be written in the seed's shuffled order

    def featurize(self, rows: list[Row]) -> Any:
        return None

    def observe(self, rows: list[Row], features: Any) -> None:
        """Nothing kept per row by default."""

    def run(self, alive: np.ndarray, spill: Spill) -> Iterable[Drop]:
        raise NotImplementedError

    def report(self) -> dict[str, Any]:
        raise NotImplementedError


class Stats(CorpusStep):
    """A measure of the rows a build keeps. It runs after every corpus step, on the rows they left (`alive`),
    drops nothing, and its `report` is the manifest's section of its name (`lengths`, `tokens`). A build runs
    every registered statistic that `applies` to its context; the user lists none in `curation.steps`."""

    @classmethod
    def applies(cls, context: Context) -> bool:
        return True

    def run(self, alive: np.ndarray, spill: Spill) -> Iterable[Drop]:
        self.measure(alive, spill)
        return ()

    def measure(self, kept: np.ndarray, spill: Spill) -> None:
        """`kept`: the spilled rows the output will hold (a mask over the spill)."""
        raise NotImplementedError
