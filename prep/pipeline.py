"""`prep build` as a list of steps: read -> adapt -> row filters -> spill -> corpus steps -> shuffle -> write.
The steps and their order come from the config's `curation.steps` (see prep/steps.py)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from prep.adapters import ADAPTERS
from prep.config import MixtureConfig, PrepError
from prep.io import atomic_output, write_json
from prep.ledger import Ledger
from prep.readers import open_source
from prep.rows import MalformedRow, Row
from prep.spill import Spill
from prep.steps import curation_steps


class RowFilter(Protocol):
    """A check on one row as it streams past: returns the drop reason, or None to keep the row."""

    def __call__(self, row: Row) -> str | None: ...


class CorpusStep(Protocol):
    """A step that needs the whole corpus (dedup, mixture): it sees every surviving row once, keeps only
    small per-row state, then names the rows to drop."""

    name: str

    def observe(self, index: int, row: Row) -> None: ...

    def select(self, alive: np.ndarray, spill: Spill) -> Iterable[tuple[int, str]]: ...

    def report(self) -> dict[str, Any]: ...


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def build(
    config: MixtureConfig,
    out: Path,
    *,
    strict: bool = False,
    dropped: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write `out` and its manifest; returns the manifest. The steps come from the config."""
    curation = curation_steps(config, progress=progress)
    filters: list[RowFilter] = curation.filters
    corpus_steps: list[CorpusStep] = curation.corpus_steps
    names = [s.name for s in config.sources]
    out.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        dropped_out = stack.enter_context(atomic_output(dropped)) if dropped else None
        ledger = Ledger(names, dropped_out)
        spill = stack.enter_context(Spill(out.parent))

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
                    ledger.drop(source.name, "invalid_json", where=where, row=None, detail=record.error or "")
                    continue
                try:
                    row = adapter(record, source, index)
                except MalformedRow as e:
                    if strict:
                        raise PrepError(f"{where}, field {e.field!r}: {e.detail}") from e
                    ledger.drop(source.name, e.reason, where=where, row=record.data, detail=f"{e.field}: {e.detail}")
                    continue
                reason = next((r for f in filters if (r := f(row)) is not None), None)
                if reason is not None:
                    ledger.drop(source.name, reason, where=where, row=row.to_json())
                    continue
                kept_index = spill.append(row, source_index)
                curation.lengths.observe(row)
                for step in corpus_steps:
                    step.observe(kept_index, row)

        alive = np.ones(len(spill), dtype=bool)
        for step in corpus_steps:
            for index, reason in step.select(alive.copy(), spill):
                if alive[index]:
                    alive[index] = False
                    source = names[spill.sources[index]]
                    ledger.drop(source, reason, where=f"spill row {index}", row=spill.get(index))

        kept = np.flatnonzero(alive)
        order = kept
        if "mixture" in config.curation.steps and config.curation.mixture.shuffle:
            order = np.random.default_rng(config.seed).permutation(kept)
        with atomic_output(out) as writer:
            for index in tqdm(order, desc="write", unit="row", disable=not progress):
                writer.write(spill.raw(int(index)))
                ledger.kept[names[spill.sources[index]]] += 1

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
        "lengths": curation.lengths.report(kept, np.frombuffer(spill.sources, dtype=np.uint16), names),
    }
    write_json(manifest_path(out), manifest)
    return manifest
