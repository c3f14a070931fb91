"""Tokens, rows and packed sequences per epoch of a recipe, from its dataset, the dataset's manifest, or a number.

The recipe's dataset is counted with the recipe's tokenizer and chat template (prep.tokens, exact or sampled),
then filtered as Axolotl filters it: rows over `sequence_len` or under 2 tokens are dropped (its default
`excess_length_strategy: drop`), rows without a trainable token too, and `val_set_size` is held out. With
`sample_packing`, rows are packed first-fit-decreasing into `sequence_len` bins, as Axolotl's multipack sampler
does, and the packing efficiency is measured on those lengths.

Given only counts (`prep fit --tokens-per-epoch [--rows-per-epoch]`, or a manifest), the rows are assumed
log-normal in length around their mean, with the spread measured on the real OpenOrca GPT-4 rows in
../shared/data (`LENGTH_SIGMA`): that sets packing, padding and attention context. Without a row count, packed
sequences are assumed full and one document each (the most attention a packed epoch can cost); an unpacked
recipe has one row per micro-batch slot, so its steps need the rows and are refused without them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

import orjson

from prep.errors import PrepError
from prep.paths import Local, resolve_path
from prep.sizing.errors import PreflightError
from prep.sizing.plan import Plan
from prep.sizing.runtime import Workload
from prep.tokens import SAMPLE_ROWS, ChatTokens, MixtureTokens, TokenCountError, count_rows, jsonl_rows

ASSUMED_PACKING = 0.95  # when no lengths are at hand (--tokens-per-epoch, a manifest): multipack's usual fill
LENGTH_SIGMA = 0.54  # std of log(row length), OpenOrca GPT-4 sample rows in the Llama-2-chat template (tested)
SHAPE_POINTS = 2000  # rows of the assumed length distribution


def packing_efficiency(lengths: Sequence[int], capacity: int) -> float:
    """Fill of `capacity`-token bins packed best-fit decreasing (the bins' free space kept sorted)."""
    free: list[int] = []  # free space of the open bins, ascending
    for n in sorted(lengths, reverse=True):
        i = bisect_left(free, n)
        if i < len(free):
            left = free.pop(i) - n
        else:
            left = capacity - n
        insort(free, left)
    return sum(lengths) / (len(free) * capacity) if free else 1.0


def _held_out(rows: float, val: float) -> float:
    """Rows Axolotl trains on after its validation split (a fraction, or a row count when >= 1)."""
    if val <= 0:
        return rows
    return max(rows - (val if val >= 1 else math.ceil(val * rows)), 0.0)


def _padded_per_row(lengths: Sequence[int], micro_batch: int, seed: int = 0) -> float:
    """Mean tokens a row costs in random micro batches, each padded to its longest row."""
    order = list(lengths)
    random.Random(seed).shuffle(order)
    groups = [order[i : i + micro_batch] for i in range(0, len(order), micro_batch)]
    return sum(max(g) * len(g) for g in groups) / len(order)


def from_lengths(plan: Plan, counted: MixtureTokens, how: str, seed: int = 0) -> Workload:
    keep = [(t, tr, w) for t, tr, w in counted.lengths if 2 <= t <= plan.seq_len and tr > 0]
    if not keep:
        raise PreflightError(f"no row of the dataset fits sequence_len {plan.seq_len} with a trainable token ({how})")
    rows = sum(w for _, _, w in keep)
    scale = _held_out(rows, plan.val_set_size) / rows
    tokens = sum(t * w for t, _, w in keep) * scale
    trainable = sum(tr * w for _, tr, w in keep) * scale
    context = sum(t * t * w for t, _, w in keep) / sum(t * w for t, _, w in keep)
    dropped = counted.total.rows - rows
    how += f"; {round(dropped):,} rows over sequence_len {plan.seq_len} or without trainable tokens dropped"
    if plan.sample_packing:
        eff = packing_efficiency([t for t, _, _ in keep], plan.seq_len)
        sequences = tokens / (plan.seq_len * eff)
        return Workload(
            tokens, trainable, rows * scale, sequences, sequences * plan.seq_len, context, how, eff, counted
        )
    if plan.pad_to_sequence_len:
        padded = rows * scale * plan.seq_len
    else:  # random micro batches, each padded to its longest row
        padded = _padded_per_row([t for t, _, _ in keep], plan.micro_batch, seed) * rows * scale
    return Workload(tokens, trainable, rows * scale, rows * scale, padded, context, how, None, counted)


def assumed_lengths(mean: float, cap: int, points: int = SHAPE_POINTS) -> list[int]:
    """Row lengths at evenly spaced quantiles of a log-normal of spread LENGTH_SIGMA and the given mean, capped."""
    mu = math.log(mean) - LENGTH_SIGMA**2 / 2
    return [
        max(1, min(cap, round(math.exp(mu + LENGTH_SIGMA * NormalDist().inv_cdf((i + 0.5) / points)))))
        for i in range(points)
    ]


def from_tokens(plan: Plan, tokens: float, how: str, rows: float | None = None) -> Workload:
    """Only counts: `tokens` per epoch and, when known, `rows`. Unpacked recipes need the rows (module docstring)."""
    if rows is None:
        if not plan.sample_packing:
            raise PreflightError(
                "the recipe does not pack (sample_packing: false), so each row fills one micro-batch slot and "
                "the steps depend on the rows, not only the tokens: give --rows-per-epoch too (or build the dataset, "
                "which prep fit then counts)"
            )
        sequences = tokens / (plan.seq_len * ASSUMED_PACKING)
        return Workload(tokens, None, None, sequences, sequences * plan.seq_len, plan.seq_len, how, ASSUMED_PACKING)
    lengths = assumed_lengths(tokens / rows, plan.seq_len)
    context = sum(t * t for t in lengths) / sum(lengths)
    how += f"; {rows:,.0f} rows of {tokens / rows:,.0f} tokens on average, log-normal spread {LENGTH_SIGMA:g} assumed"
    if plan.sample_packing:
        eff = packing_efficiency(lengths, plan.seq_len)
        sequences = tokens / (plan.seq_len * eff)
        return Workload(tokens, None, rows, sequences, sequences * plan.seq_len, context, how, eff)
    if plan.pad_to_sequence_len:
        padded = rows * plan.seq_len
    else:
        padded = _padded_per_row(lengths, plan.micro_batch) / (sum(lengths) / len(lengths)) * tokens
    return Workload(tokens, None, rows, rows, padded, context, how)


def _dataset_files(plan: Plan, run_dir: Path) -> list[Path]:
    """The local JSON Lines files of the recipe's datasets (what `prep build` writes), by prep.paths' rule."""
    files: list[Path] = []
    for entry in plan.datasets:
        if not entry.get("path"):
            continue
        try:
            where = resolve_path(str(entry["path"]), (".jsonl", ".json"), base=run_dir, compressed=())
        except PrepError:
            continue  # missing or another format: the inputs check says so; counting needs a local file
        if isinstance(where, Local):
            files += where.files
    return files


def _manifest_counts(files: list[Path]) -> tuple[float, float] | None:
    """(tokens, rows) the manifests of `files` record, or None when one has no token count."""
    from prep.pipeline import manifest_path

    tokens = rows = 0.0
    for f in files:
        m = manifest_path(f)
        try:
            manifest = orjson.loads(m.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        counted = manifest.get("tokens")
        if not counted or not isinstance(manifest.get("rows"), int):
            return None
        tokens += counted["total"]["tokens"]
        rows += manifest["rows"]
    return tokens, rows


def workload(
    plan: Plan,
    run_dir: Path,
    tokens_per_epoch: float | None = None,
    tokenizer: str | None = None,
    sample: int | None = None,
    rows_per_epoch: float | None = None,
) -> Workload:
    """The epoch's workload: `tokens_per_epoch` (and `rows_per_epoch`) if given, else the recipe's dataset counted
    with `tokenizer` (default: base_model's) and the recipe's chat template, else the dataset's manifest."""
    if tokens_per_epoch is not None:
        how = "given (--tokens-per-epoch" + (", --rows-per-epoch)" if rows_per_epoch is not None else ")")
        return from_tokens(plan, tokens_per_epoch, how, rows_per_epoch)
    files = _dataset_files(plan, run_dir)
    if not files:
        where = ", ".join(str(e.get("path")) for e in plan.datasets) or "none"
        raise PreflightError(
            f"time: no local JSONL dataset to count (datasets: {where}); build it or give --tokens-per-epoch"
        )
    template: Path | str | None = plan.chat_template_jinja
    if isinstance(template, str) and "{" not in template:
        template = run_dir / template
    try:
        counter = ChatTokens.load(tokenizer or plan.base_model, template, plan.trust_remote_code)
    except TokenCountError as e:
        from_manifest = _manifest_counts(files)
        if from_manifest is None:
            raise PreflightError(f"time: {e}; give --tokens-per-epoch or a local --base-model") from e
        tokens, rows = from_manifest
        return from_tokens(plan, tokens, f"the manifest's counts of {', '.join(map(str, files))}", rows)
    merged = MixtureTokens({})
    for f in files:
        try:
            part = count_rows(*jsonl_rows(f), counter, sample=sample or SAMPLE_ROWS)
        except TokenCountError as e:
            raise PreflightError(f"time: {e}") from e
        for name, tally in part.sources.items():
            merged.sources[f"{f.name}:{name}"] = tally
        merged.lengths.extend(part.lengths)
    work = from_lengths(plan, merged, f"{', '.join(map(str, files))}: {merged.method()}")
    return replace(work, counter=counter)
