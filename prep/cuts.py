"""Where each source's rows went, stage by stage, so no source is wiped by accident: a warning when a stage
leaves a source that had rows with none, or when a stage after the dedups leaves it below
`curation.warn_source_share` of the rows it had after them; and the sources cut by more than twice the overall
rate from then to the output (`over`), which the card flags."""

from __future__ import annotations

from typing import Any

FILTER_STAGE = "row filters"  # the stage of every row filter together (they run on each row in turn)


def over(kept: float, overall: float) -> bool:
    """Cut by more than twice the overall rate: more than twice the overall share cut, or (the reading that
    still works once the overall cut passes 50%) under half the overall share kept."""
    return 1 - kept > 2 * (1 - overall) or kept < overall / 2


def source_cuts(
    names: list[str], read: list[int], stages: dict[str, list[int]], dedups: tuple[str, ...], warn_share: float
) -> dict[str, Any]:
    """The manifest's `cuts`: rows per source after each stage (`stages`, in order, from the row filters on),
    the stage the shares are measured from (the last dedup, else the row filters), the warnings, the
    over-cut sources."""
    order = list(stages)
    base = ([s for s in order if s in dedups] or [FILTER_STAGE])[-1]
    rows = {n: [read[i], *(stages[s][i] for s in order)] for i, n in enumerate(names)}
    warnings = []
    for i, name in enumerate(names):
        before = read[i]
        for stage in order:
            after = stages[stage][i]
            if before and not after:
                warnings.append(f"{stage} kept no row of source {name!r} ({before:,} -> 0)")
            before = after
        start = stages[base][i]
        for stage in order[order.index(base) + 1 :]:
            after = stages[stage][i]
            if start and 0 < after < warn_share * start:  # once, at the stage that went below
                warnings.append(
                    f"{stage} left source {name!r} {after:,} of its {start:,} rows after {base} "
                    f"({after / start:.1%}, below curation.warn_source_share {warn_share:.0%})"
                )
                break
    final = order[-1]
    total_start = sum(stages[base])
    overall = sum(stages[final]) / total_start if total_start else 1.0
    over_cut = [n for i, n in enumerate(names) if stages[base][i] and over(stages[final][i] / stages[base][i], overall)]
    return {
        "stages": ["read", *order],
        "rows": rows,
        "from": base,
        "kept_share": {
            n: round(stages[final][i] / stages[base][i], 4) if stages[base][i] else None for i, n in enumerate(names)
        },
        "overall_kept_share": round(overall, 4),
        "over_cut": over_cut,
        "warn_share": warn_share,
        "warnings": warnings,
    }
