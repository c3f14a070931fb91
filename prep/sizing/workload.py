"""Tokens, rows and packed sequences per epoch of a recipe, from its dataset, the dataset's manifest, or a number.

The recipe's dataset is counted with the recipe's tokenizer and chat template (prep.tokens, exact or sampled),
then filtered as Axolotl filters it: rows over `sequence_len` or under 2 tokens are dropped (its default
`excess_length_strategy: drop`), rows without a trainable token too, and `val_set_size` is held out. With
`sample_packing`, rows are packed first-fit-decreasing into `sequence_len` bins, as Axolotl's multipack sampler
does, and the packing efficiency is measured on those lengths.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import orjson

from prep.errors import PrepError
from prep.paths import Local, resolve_path
from prep.sizing.errors import PreflightError
from prep.sizing.plan import Plan
from prep.sizing.runtime import Workload
from prep.tokens import SAMPLE_ROWS, ChatTokens, MixtureTokens, TokenCountError, count_jsonl

ASSUMED_PACKING = 0.95  # when no lengths are at hand (--tokens-per-epoch, a manifest): multipack's usual fill


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
        order = [t for t, _, _ in keep]
        random.Random(seed).shuffle(order)
        mb = plan.micro_batch
        groups = [order[i : i + mb] for i in range(0, len(order), mb)]
        padded = sum(max(g) * len(g) for g in groups) / len(order) * rows * scale
    return Workload(tokens, trainable, rows * scale, rows * scale, padded, context, how, None, counted)


def from_tokens(plan: Plan, tokens: float, how: str) -> Workload:
    """Only a token count: rows packed at the usual fill (or, unpacked, as if each filled sequence_len)."""
    eff = ASSUMED_PACKING if plan.sample_packing else 1.0
    sequences = tokens / (plan.seq_len * eff)
    return Workload(
        tokens,
        tokens,
        sequences,
        sequences,
        sequences * plan.seq_len,
        plan.seq_len / 2,
        how,
        eff if plan.sample_packing else None,
    )


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


def _manifest_tokens(files: list[Path]) -> float | None:
    from prep.pipeline import manifest_path

    total = 0.0
    for f in files:
        m = manifest_path(f)
        try:
            tokens = orjson.loads(m.read_bytes()).get("tokens")
        except (OSError, orjson.JSONDecodeError):
            return None
        if not tokens:
            return None
        total += tokens["total"]["tokens"]
    return total


def workload(
    plan: Plan,
    run_dir: Path,
    tokens_per_epoch: float | None = None,
    tokenizer: str | None = None,
    sample: int | None = None,
) -> Workload:
    """The epoch's workload: `tokens_per_epoch` if given, else the recipe's dataset counted with `tokenizer`
    (default: base_model's) and the recipe's chat template, else the dataset's manifest."""
    if tokens_per_epoch is not None:
        return from_tokens(plan, tokens_per_epoch, "given (--tokens-per-epoch)")
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
        from_manifest = _manifest_tokens(files)
        if from_manifest is None:
            raise PreflightError(f"time: {e}; give --tokens-per-epoch or a local --base-model") from e
        return from_tokens(plan, from_manifest, f"the manifest's token count of {', '.join(map(str, files))}")
    merged = MixtureTokens({})
    for f in files:
        try:
            part = count_jsonl(f, counter, sample=sample or SAMPLE_ROWS)
        except TokenCountError as e:
            raise PreflightError(f"time: {e}") from e
        for name, tally in part.sources.items():
            merged.sources[f"{f.name}:{name}"] = tally
        merged.lengths.extend(part.lengths)
    work = from_lengths(plan, merged, f"{', '.join(map(str, files))}: {merged.method()}")
    return replace(work, counter=counter)
