"""`prep build` as a list of steps: read -> adapt -> screen (row filters, per-row features; in worker
processes) -> spill (into shuffle buckets) -> corpus steps -> write. The steps and their order come from the
config's `curation.steps` (see prep/steps.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
from tqdm import tqdm

from prep.adapters import ADAPTERS
from prep.config import MixtureConfig, PrepError
from prep.io import atomic_output, write_json
from prep.ledger import Ledger
from prep.readers import open_source
from prep.rows import MalformedRow, Row
from prep.screen import Screen, Screened, Screening, default_workers
from prep.spill import Spill
from prep.steps import curation_steps

BATCH = 1024  # rows per screening batch: large enough to amortize a round trip to a worker


class CorpusStep(Protocol):
    """A step that needs the whole corpus (dedup, mixture): `featurize` does the per-row work on a batch (in a
    worker), `observe` keeps the small result per spilled row, `select` then names the rows to drop."""

    name: str

    def featurize(self, rows: list[Row]) -> Any: ...

    def observe(self, rows: list[Row], features: Any) -> None: ...

    def select(self, alive: np.ndarray, spill: Spill) -> Iterable[tuple[int, str]]: ...

    def report(self) -> dict[str, Any]: ...


@dataclass
class Batch:
    sources: list[int] = field(default_factory=list)
    wheres: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    # records that never became rows, booked with the batch so the --dropped file's order is the same
    # whatever the number of workers: (source, reason, where, record, detail)
    malformed: list[tuple[str, str, str, Any, str]] = field(default_factory=list)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """The indexes and models loaded for a build live through it: keep the garbage collector from scanning them
    again and again (4.5% of a build's time), and from running every 700 row allocations. Forked workers
    inherit this."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def build(
    config: MixtureConfig,
    out: Path,
    *,
    strict: bool = False,
    dropped: Path | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write `out` and its manifest; returns the manifest. The steps come from the config; `workers` screening
    processes (default: one per core) do not change the output."""
    curation = curation_steps(config, progress=progress)
    corpus_steps: list[CorpusStep] = curation.corpus_steps
    names = [s.name for s in config.sources]
    out.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(quiet_gc())
        dropped_out = stack.enter_context(atomic_output(dropped)) if dropped else None
        ledger = Ledger(names, dropped_out)
        shuffle = "mixture" in config.curation.steps and config.curation.mixture.shuffle
        spill = stack.enter_context(Spill(out.parent, shuffle_seed=config.seed if shuffle else None))
        screening = stack.enter_context(
            Screening(
                Screen(curation.filters, corpus_steps, curation.lengths),
                default_workers() if workers is None else workers,
            )
        )

        def keep(batch: Batch, screened: Screened) -> None:
            for source_name, reason, where, record, detail in batch.malformed:
                ledger.drop(source_name, reason, where=where, row=record, detail=detail)
            kept: list[Row] = []
            lines: list[bytes] = []
            sources: list[int] = []
            for source, where, row, line, verdict in zip(
                batch.sources, batch.wheres, batch.rows, batch.lines, screened.verdicts, strict=True
            ):
                if verdict is not None:
                    by, reason = verdict
                    if hasattr(curation.filters[by], "record"):
                        curation.filters[by].record(row)
                    ledger.drop(names[source], reason, where=where, row=row.to_json() if ledger.keeps_rows else None)
                    continue
                kept.append(row)
                lines.append(line)
                sources.append(source)
            spill.extend(lines, sources)
            curation.lengths.observe(screened.lengths)
            for step, features in zip(corpus_steps, screened.features, strict=True):
                step.observe(kept, features)

        batch = Batch()
        for source_index, source in enumerate(config.sources):
            adapter = ADAPTERS[source.format]
            records, total = open_source(source)
            bar = tqdm(records, total=total, desc=f"read {source.name}", unit="row", disable=not progress)
            for index, record in enumerate(bar):
                ledger.read[source.name] += 1
                where = f"{record.file} row {record.row}"
                if record.data is None:
                    if strict:
                        raise PrepError(f"{where}: {record.error}")
                    batch.malformed.append((source.name, "invalid_json", where, None, record.error or ""))
                    continue
                try:
                    row = adapter(record, source, index)
                except MalformedRow as e:
                    if strict:
                        raise PrepError(f"{where}, field {e.field!r}: {e.detail}") from e
                    batch.malformed.append((source.name, e.reason, where, record.data, f"{e.field}: {e.detail}"))
                    continue
                batch.sources.append(source_index)
                batch.wheres.append(where)
                batch.rows.append(row)
                batch.lines.append(orjson.dumps(row.to_json()))
                if len(batch.rows) == BATCH:
                    for done in screening.submit(batch, batch.rows, batch.lines):
                        keep(*done)
                    batch = Batch()
        for done in screening.submit(batch, batch.rows, batch.lines):
            keep(*done)
        for done in screening.finish():
            keep(*done)

        alive = np.ones(len(spill), dtype=bool)
        for step in corpus_steps:
            for index, reason in step.select(alive.copy(), spill):
                if alive[index]:
                    alive[index] = False
                    ledger.drop(
                        names[spill.sources[index]],
                        reason,
                        where=f"spill row {index}",
                        row=spill.get(index) if ledger.keeps_rows else None,
                    )

        kept = np.flatnonzero(alive)
        with atomic_output(out) as writer, tqdm(total=len(kept), desc="write", unit="row", disable=not progress) as bar:
            for piece, rows in spill.lines(kept):
                writer.write(piece)
                bar.update(rows)
        row_sources = np.frombuffer(spill.sources, dtype=np.uint16)
        for name, count in zip(names, np.bincount(row_sources[kept], minlength=len(names)).tolist(), strict=True):
            ledger.kept[name] += count

    total_kept = ledger.totals()["kept"]
    manifest = {
        "output": out.name,
        "sha256": writer.sha256.hexdigest(),
        "rows": ledger.totals()["kept"],
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "sources": ledger.per_source(),
        "totals": ledger.totals(),
        "steps": {step.name: step.report() for step in [*curation.reporters, *corpus_steps]},
        "mix_shares": {n: round(s / max(total_kept, 1), 4) for n, s in ledger.kept.items()},
        "lengths": curation.lengths.report(kept, row_sources, names),
    }
    write_json(manifest_path(out), manifest)
    return manifest
