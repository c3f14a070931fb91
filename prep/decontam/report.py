"""The decontam section of a build's manifest, read back for `prep decontam-report`; a file that is not such
a manifest is one PrepError naming it."""

from __future__ import annotations

from pathlib import Path

from prep.errors import PrepError
from prep.manifests import read_manifest

Hit = tuple[str, int, str, list[str]]  # item key, rows, question, row ids


def read_report(manifest: Path) -> list[tuple[str, list[Hit]]]:
    """Per benchmark: a title line and its hit items, most rows first."""
    data = read_manifest(manifest)
    steps = data.get("steps")
    if not isinstance(steps, dict):
        raise PrepError(f"{manifest}: not a `prep build` manifest (no `steps`); give OUT.manifest.json")
    report = steps.get("decontam")
    if report is None:
        raise PrepError(f"{manifest}: no decontam step in this build (add it to curation.steps)")
    out = []
    try:
        for bench, hits in report["hits"].items():
            title = (
                f"{bench}: {int(report['rows_dropped'][bench])} rows dropped, {len(hits)} of "
                f"{int(report['items'][bench])} items hit"
            )
            rows = [
                (str(k), int(h["rows"]), str(h["question"]), [str(i) for i in h["row_ids"]]) for k, h in hits.items()
            ]
            out.append((title, sorted(rows, key=lambda r: -r[1])))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PrepError(f"{manifest}: steps.decontam is damaged ({type(e).__name__}: {e}); rebuild it") from e
    return out
