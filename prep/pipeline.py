"""`prep build` as a list of steps: read -> adapt -> row filters -> spill -> corpus steps -> write."""

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


class RowFilter(Protocol):
    """A check on one row as it streams past: returns the drop reason, or None to keep the row."""

    def __call__(self, row: Row) -> str | None: ...


class CorpusStep(Protocol):
    """A step that needs the whole corpus (dedup, mixture): it sees every surviving row once, keeps only
    small per-row state, then names the rows to drop."""

    name: str

    def observe(self, index: int, row: Row) -> None: ...

    def select(self, alive: np.ndarray) -> Iterable[tuple[int, str]]: ...

    def report(self) -> dict[str, Any]: ...


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def build(
    config: MixtureConfig,
    out: Path,
    *,
    strict: bool = False,
    dropped: Path | None = None,
    filters: list[RowFilter] | None = None,
    corpus_steps: list[CorpusStep] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write `out` and its manifest; returns the manifest."""
    filters = filters or []
    corpus_steps = corpus_steps or []
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
                for step in corpus_steps:
                    step.observe(kept_index, row)

        alive = np.ones(len(spill), dtype=bool)
        for step in corpus_steps:
            for index, reason in step.select(alive.copy()):
                if alive[index]:
                    alive[index] = False
                    source = names[spill.sources[index]]
                    ledger.drop(source, reason, where=f"spill row {index}", row=spill.get(index))

        with atomic_output(out) as writer:
            for index in tqdm(np.flatnonzero(alive), desc="write", unit="row", disable=not progress):
                writer.write(spill.raw(int(index)))
                ledger.kept[names[spill.sources[index]]] += 1

    manifest = {
        "output": out.name,
        "sha256": writer.sha256.hexdigest(),
        "rows": ledger.totals()["kept"],
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "sources": ledger.per_source(),
        "totals": ledger.totals(),
        "steps": {step.name: step.report() for step in corpus_steps},
    }
    write_json(manifest_path(out), manifest)
    return manifest
