"""`prep compare A.manifest.json B.manifest.json`: two mixtures side by side (shares, rows and tokens per
source, variety, GPT-4 share, scores, licences), as a table and, with --plot, a bar chart of the shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from prep.card import save_png, source_tokens
from prep.config import PrepError


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise PrepError(f"{path}: cannot read a build manifest: {e}") from e
    if not isinstance(manifest, dict) or "sources" not in manifest or "mix_shares" not in manifest:
        raise PrepError(f"{path}: not a `prep build` manifest (no `sources`/`mix_shares`); give OUT.manifest.json")
    return manifest


def rows(manifest: dict[str, Any], sources: list[str]) -> list[tuple[str, str]]:
    """(metric, value) in a fixed order, '-' where the build does not have it."""
    unit = manifest.get("lengths", {}).get("unit", "chars")
    select = manifest.get("steps", {}).get("select") or {}
    total = sum(source_tokens(manifest, s) for s in manifest["sources"])
    out = [("rows", f"{manifest['rows']:,}"), (unit, f"{total:,}")]
    for s in sources:
        kept = manifest["sources"].get(s, {}).get("kept")
        share = manifest["mix_shares"].get(s)
        out.append(
            (f"  {s}", "-" if kept is None else f"{kept:,} rows, {share:.1%}, {source_tokens(manifest, s):,} {unit}")
        )
    if select.get("rows_before"):
        out += [
            (
                "variety (effective clusters)",
                f"{select['variety_before']:.2f} -> {select['variety_after']:.2f} of {select['clusters']}",
            ),
            ("GPT-4 share", f"{select['gpt4_share_before']:.1%} -> {select['gpt4_share_after']:.1%}"),
            (
                "score mean / p50 (selected)",
                f"{select['scores_after'].get('mean', 0):.3f} / {select['scores_after'].get('p50', 0):.3f}",
            ),
            ("budget", ", ".join(f"{v:,} {k}" for k, v in (select.get("budget") or {}).items()) or "none"),
        ]
    else:
        out += [
            (m, "-") for m in ("variety (effective clusters)", "GPT-4 share", "score mean / p50 (selected)", "budget")
        ]
    licences = manifest.get("licences", {})
    out.append(("licences kept", ", ".join(sorted(set(licences.get("kept", {}).values()))) or "-"))
    out.append(("licence warnings", str(len(licences.get("warnings", []))) if licences else "-"))
    out.append(("steps", ", ".join(manifest["config"]["curation"]["steps"])))
    return out


def compare_table(a: Path, b: Path) -> tuple[Table, dict[str, Any], dict[str, Any]]:
    ma, mb = load_manifest(a), load_manifest(b)
    sources = list(dict.fromkeys([*ma["sources"], *mb["sources"]]))
    table = Table(title="prep compare")
    table.add_column("")
    table.add_column(str(a), overflow="fold")
    table.add_column(str(b), overflow="fold")
    for (metric, va), (_, vb) in zip(rows(ma, sources), rows(mb, sources), strict=True):
        table.add_row(metric, va, vb)
    return table, ma, mb


def plot_shares(a: Path, ma: dict[str, Any], b: Path, mb: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys([*ma["sources"], *mb["sources"]]))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(sources)), 3.5))
    x = range(len(sources))
    for offset, (path, m) in zip((-0.2, 0.2), ((a, ma), (b, mb)), strict=True):
        ax.bar([i + offset for i in x], [m["mix_shares"].get(s, 0) for s in sources], width=0.4, label=path.name)
    ax.set_xticks(list(x), sources, rotation=20, ha="right")
    ax.set_ylabel("share of rows")
    ax.legend()
    save_png(out, fig)
    plt.close(fig)
