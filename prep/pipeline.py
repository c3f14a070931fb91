"""`prep build` as five stages: read (sources -> adapted rows, in batches) -> screen (row filters and the
corpus steps' per-row work, in worker processes; survivors spilled into shuffle buckets) -> corpus (corpus
steps drop rows of the whole corpus; the statistics measure what is left) -> write -> commit (the manifest
and data card beside the output, every file replaced together). The steps and their order come from the
config's `curation.steps` (see prep/steps.py); every row read is counted kept or dropped with its reason."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from prep.adapters import ADAPTERS
from prep.card import PLOTS, card_files, card_path, plot_path
from prep.config import MixtureConfig
from prep.curation import Curation, curation_steps
from prep.cuts import FILTER_STAGE, source_cuts
from prep.errors import PrepError
from prep.ids import UniqueIds
from prep.ledger import Ledger
from prep.licences import licence_report
from prep.outputs import HashingWriter, Outputs, refuse_aliases, refuse_companion_names
from prep.paths import Hub, Local
from prep.provenance import provenance
from prep.readers import open_source, refuse_shared_files, resolve_source
from prep.rows import MalformedRow, Row
from prep.screen import Screen, Screened, Screening, default_workers
from prep.spill import Spill
from prep.steps import DEDUPS
from prep.workdir import WorkDir, sweep_stale

BATCH = 1024  # rows per screening batch: large enough to amortize a round trip to a worker


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


@contextmanager
def write_errors_named(directory: Path) -> Iterator[None]:
    """A failed write to the spill or an output names no file (a full disk, most often): say where."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise PrepError(f"{directory}: {e.strerror or e} while writing the build's files there") from e


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def read(
    config: MixtureConfig,
    wheres: list[Local | Hub],
    ledger: Ledger,
    inputs: dict[str, Any],
    ids: UniqueIds,
    *,
    strict: bool,
    progress: bool,
) -> Iterator[Batch]:
    """Stage 1: every source's records through its format's adapter, in batches of BATCH rows, each row's id
    made unique in the build (`ids` counts the renames); `inputs` gets what each source read (its files with
    their hashes, or its hub id) as it goes."""
    batch = Batch()
    for source_index, source in enumerate(config.sources):
        adapter = ADAPTERS[source.format]
        opened = open_source(source, wheres[source_index])
        inputs[source.name] = opened.audit
        bar = tqdm(opened.records, total=opened.total, desc=f"read {source.name}", unit="row", disable=not progress)
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
            if len(batch.rows) == BATCH:
                yield lined(batch, ids)
                batch = Batch()
    yield lined(batch, ids)


def lined(batch: Batch, ids: UniqueIds) -> Batch:
    """The batch with its rows' ids made unique and their JSON lines written, as the workers and spill take them."""
    ids.assign(batch.rows)
    batch.lines = [orjson.dumps(row.to_json()) for row in batch.rows]
    return batch


def keep(batch: Batch, screened: Screened, curation: Curation, ledger: Ledger, spill: Spill) -> None:
    """Stage 2's books, in the main process and in input order: drops into the ledger (and each filter's own
    count), survivors into the spill, the corpus steps' per-row results kept."""
    for source, reason, where, record, detail in batch.malformed:
        ledger.drop(source, reason, where=where, row=record, detail=detail)
    kept: list[Row] = []
    lines: list[bytes] = []
    sources: list[int] = []
    for source_index, where, row, line, drop in zip(
        batch.sources, batch.wheres, batch.rows, batch.lines, screened.drops, strict=True
    ):
        if drop is None:
            kept.append(row)
            lines.append(line)
            sources.append(source_index)
            continue
        position, verdict = drop
        curation.filters[position].book(row, verdict)
        ledger.drop(
            ledger.sources[source_index],
            verdict.reason,
            where=where,
            row=row.to_json() if ledger.keeps_rows else None,
            detail=verdict.detail,
        )
    spill.extend(lines, sources)
    for step, features in zip(curation.on_corpus(), screened.features, strict=True):
        step.observe(kept, features)


def screen(batches: Iterator[Batch], screening: Screening, curation: Curation, ledger: Ledger, spill: Spill) -> None:
    """Stage 2: the batches through the worker processes, booked as their results come back (in order)."""
    for batch in batches:
        for done in screening.submit(batch, batch.rows, batch.lines):
            keep(*done, curation, ledger, spill)
    for done in screening.finish():
        keep(*done, curation, ledger, spill)


def corpus(curation: Curation, spill: Spill, ledger: Ledger) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Stage 3: each corpus step in order drops spilled rows, then the statistics measure the rows left, which
    the ledger books as kept; returns their indexes, and the rows per source after the row filters and after
    each corpus step."""
    alive = np.ones(len(spill), dtype=bool)
    sources = np.frombuffer(spill.sources, dtype=np.uint16)
    stages = {FILTER_STAGE: np.bincount(sources, minlength=len(ledger.sources)).tolist()}
    for step in curation.corpus_steps:
        for index, reason, *detail in step.run(alive.copy(), spill):
            if alive[index]:
                alive[index] = False
                ledger.drop(
                    ledger.sources[spill.sources[index]],
                    reason,
                    where=f"spill row {index}",
                    row=spill.row(index).to_json() if ledger.keeps_rows else None,
                    detail=detail[0] if detail else "",
                )
        stages[step.name] = np.bincount(sources[alive], minlength=len(ledger.sources)).tolist()
    for stat in curation.stats:
        assert not list(stat.run(alive.copy(), spill)), f"{stat.name} is a statistic: it drops nothing"
    ledger.keep(np.bincount(sources[alive], minlength=len(ledger.sources)).tolist())
    return np.flatnonzero(alive), stages


def write(writer: HashingWriter, spill: Spill, kept: np.ndarray, progress: bool) -> str:
    """Stage 4: the kept rows, in the spill's (shuffled) order, to `writer` (a temp until the commit); returns
    their sha256."""
    with tqdm(total=len(kept), desc="write", unit="row", disable=not progress) as bar:
        for piece, rows in spill.lines(kept):
            writer.write(piece)
            bar.update(rows)
    return writer.sha256.hexdigest()


def commit(staged: Outputs, out: Path, manifest: dict[str, Any]) -> None:
    """Stage 5: the manifest and the data card (a readable digest of it, with its plots) staged beside the
    output, an earlier build's plot the new card lacks removed, and every file replaced together."""
    staged.open(manifest_path(out)).write(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    card = card_files(out, manifest)
    for path, content in card.items():
        staged.open(path).write(content)
    for plot in PLOTS:
        if plot_path(out, plot) not in card:
            staged.remove(plot_path(out, plot))
    staged.commit()


def refuse_bad_outputs(
    config: MixtureConfig,
    wheres: list[Local | Hub],
    curation: Curation,
    out: Path,
    dropped: Path | None,
    config_path: Path | None,
) -> dict[str, Any]:
    """Before any row is read: no output overwrites an input (a source file, a step's file, the config) or
    another output, and no name collides with an output's companions; stale temps of killed builds swept.
    Returns what the steps read besides the sources (the manifest's `inputs`)."""
    step_inputs = {key: audit for step in curation.all() for key, audit in step.inputs().items()}
    refuse_companion_names({"--out": out, **({"--dropped": dropped} if dropped else {})})
    outputs = {
        "--out": out,
        "its manifest": manifest_path(out),
        "its data card": card_path(out),
        **{f"its {plot} plot": plot_path(out, plot) for plot in PLOTS},
        **({"--dropped": dropped} if dropped else {}),
    }
    inputs = [
        *(
            (f"source {s.name!r}", f)
            for s, where in zip(config.sources, wheres, strict=True)
            if isinstance(where, Local)
            for f in where.files
        ),
        *((f"{key}'s file", Path(f["path"])) for key, audit in step_inputs.items() for f in audit.get("files", [])),
        *([("the config", config_path)] if config_path else []),
    ]
    refuse_aliases(outputs, inputs)
    for directory in {p.parent for p in outputs.values()}:
        sweep_stale(directory)
    return step_inputs


def build(
    config: MixtureConfig,
    out: Path,
    *,
    strict: bool = False,
    dropped: Path | None = None,
    progress: bool = True,
    workers: int | None = None,
    config_path: Path | None = None,
) -> dict[str, Any]:
    """Write `out`, its manifest (and `dropped`) together, or change none of them; returns the manifest. The
    steps come from the config; `workers` screening processes (default: one per core) do not change the
    output. Where the sources are, that no output overwrites an input, and what the steps load are all
    checked before any row is read."""
    wheres = [resolve_source(s) for s in config.sources]
    refuse_shared_files(config.sources, wheres)
    curation = curation_steps(config, progress=progress, explain=dropped is not None)
    step_inputs = refuse_bad_outputs(config, wheres, curation, out, dropped, config_path)
    read_inputs: dict[str, Any] = {}
    with ExitStack() as stack:
        stack.enter_context(write_errors_named(out.parent))
        stack.enter_context(quiet_gc())
        workdir = stack.enter_context(WorkDir(out.parent))
        staged = stack.enter_context(Outputs(workdir))
        ledger = Ledger([s.name for s in config.sources], staged.open(dropped) if dropped else None)
        shuffle = any(step.shuffles for step in curation.corpus_steps)
        spill = stack.enter_context(Spill(workdir, shuffle_seed=config.seed if shuffle else None))
        workers = default_workers() if workers is None else workers
        screening = stack.enter_context(Screening(Screen(curation.filters, curation.on_corpus()), workers))
        ids = UniqueIds()
        batches = read(config, wheres, ledger, read_inputs, ids, strict=strict, progress=progress)
        screen(batches, screening, curation, ledger, spill)
        kept, stages = corpus(curation, spill, ledger)
        sha256 = write(staged.open(out), spill, kept, progress)
        inputs = {**read_inputs, **step_inputs}
        manifest = make_manifest(config, out, sha256, ledger, curation, inputs, ids, stages)
        commit(staged, out, manifest)
    return manifest


def build_warnings(ledger: Ledger, curation: Curation, ids: UniqueIds) -> list[str]:
    """What the user must hear about a build that ran: sources that gave nothing, renamed ids, steps' warnings."""
    warnings = [f"source {name!r} read no rows; check its path and files" for name, n in ledger.read.items() if not n]
    warnings += [
        f"source {name!r}: {n} rows repeated an earlier row's id and were renamed ID#2, ID#3, ... (manifest "
        "`renamed_ids`)"
        for name, n in ids.renamed.items()
    ]
    warnings += [w for step in curation.all() for w in step.warnings()]
    if not ledger.totals()["kept"]:
        warnings.append("the output has 0 rows: every row read was dropped (see the drop reasons)")
    return warnings


def make_manifest(
    config: MixtureConfig,
    out: Path,
    sha256: str,
    ledger: Ledger,
    curation: Curation,
    inputs: dict[str, Any],
    ids: UniqueIds,
    stages: dict[str, list[int]],
) -> dict[str, Any]:
    total_kept = ledger.totals()["kept"]
    reports = {f.name: f.report() for f in curation.filters}
    names = ledger.sources
    read_rows = [ledger.read[n] for n in names]
    cuts = source_cuts(names, read_rows, stages, DEDUPS, config.curation.warn_source_share)
    return {
        "output": out.name,
        "sha256": sha256,
        "rows": total_kept,
        "seed": config.seed,
        "provenance": provenance([lib for s in curation.all() for lib in s.libraries]),
        "config": config.model_dump(mode="json"),
        "sources": ledger.per_source(),
        "totals": ledger.totals(),
        "steps": {
            **{name: report for name, report in reports.items() if report is not None},
            **{step.name: step.report() for step in curation.corpus_steps},
        },
        "mix_shares": {n: round(s / max(total_kept, 1), 4) for n, s in ledger.kept.items()},
        "licences": licence_report({s.name: s.licence for s in config.sources}, dict(ledger.kept)),
        # per source, then per step that read files (decontam's benchmarks): the files read (path, bytes,
        # sha256) and the ones skipped with their count by reason, or the hub id
        "inputs": inputs,
        "renamed_ids": {name: ids.renamed[name] for name in ledger.sources},
        "warnings": build_warnings(ledger, curation, ids) + cuts["warnings"],
        "cuts": cuts,
        **{stat.name: stat.report() for stat in curation.stats},  # lengths, tokens
    }
