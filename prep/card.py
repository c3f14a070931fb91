"""The data card: `OUT.card.md` beside the output, with its plots (`OUT.card.*.png`), made from the manifest
by every build and committed with OUT and the manifest, so what it says is what the manifest records: sources
with their licences, drops, warnings, and, when the `select` step ran, the clusters of the prompts (labels,
rows and tokens before and after selection), the variety index and the score distributions."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

PLOTS = ("clusters", "scores")  # OUT.card.<plot>.png, when the select step ran


def card_path(out: Path) -> Path:
    return out.with_name(out.name + ".card.md")


def plot_path(out: Path, plot: str) -> Path:
    return out.with_name(f"{out.name}.card.{plot}.png")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(f"{c:,}" if isinstance(c, int) else str(c) for c in row) + " |" for row in rows]
    return lines


def source_tokens(manifest: dict[str, Any], source: str) -> int:
    """Kept units (tokens or chars, as the `length` filter counts a row: its system and user turns plus all its
    assistant turns) of a source: their exact sum; manifests written before it was recorded give mean times rows."""
    stats = manifest.get("lengths", {}).get(source, {})
    return int(stats["total"]) if "total" in stats else round(stats.get("mean", 0) * stats.get("rows", 0))


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (no software stamp, so a rebuild gives the same bytes); closes it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def plot_clusters(select: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = sorted(select["per_cluster"], key=lambda c: -c["rows_before"])[:40]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(clusters) + 1.5))
    y = range(len(clusters))
    ax.barh(y, [c["rows_before"] for c in clusters], color="#c8d6e5", label="before selection")
    ax.barh(y, [c["rows_after"] for c in clusters], color="#2e86de", label="selected")
    ax.set_yticks(list(y), [f"{c['cluster']}: {c['label'][:40]}" for c in clusters], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    ax.set_title(
        f"prompt clusters (largest {len(clusters)} of {select['clusters']}): variety "
        f"{select['variety_before']:.1f} -> {select['variety_after']:.1f} effective clusters"
    )
    ax.legend(loc="lower right")
    return png(fig)


def plot_scores(select: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label, color in (
        ("scores_before", "before selection", "#c8d6e5"),
        ("scores_after", "selected", "#2e86de"),
    ):
        hist = select[key].get("histogram", [])
        if hist:
            width = 1 / len(hist)
            ax.bar([i * width for i in range(len(hist))], hist, width=width, align="edge", color=color, label=label)
    ax.set_xlabel("quality score")
    ax.set_ylabel("rows")
    ax.set_title("quality score distribution")
    ax.legend()
    return png(fig)


def selection_section(select: dict[str, Any], out: Path) -> list[str]:
    unit = select["unit"]
    budget = select["budget"] or {"rows": "none (all kept)"}
    (what, amount), *_ = budget.items()
    lines = [
        "## Selection (`select` step)",
        "",
        f"Budget: {amount:,} {what}." if isinstance(amount, int) else f"Budget: {amount}.",
        f"Prompts embedded by `{select['embed']}`, {select['clusters']} clusters (k-means); cluster quotas "
        f"proportional to size^{select['alpha']}; within a cluster the best scores first. Lengths in {unit}.",
        "",
        f"- rows: {select['rows_before']:,} -> {select['rows_after']:,}; {unit}: {select['tokens_before']:,} -> "
        f"{select['tokens_after']:,}",
        f"- variety index (effective number of clusters, exp of the entropy of the cluster shares): "
        f"{select['variety_before']:.2f} -> {select['variety_after']:.2f} of {select['clusters']}",
        f"- GPT-4 share: {select['gpt4_share_before']:.1%} -> {select['gpt4_share_after']:.1%}",
        *(
            [
                f"- IFD (`{select['scorer']['model']}`): {select['ifd']['misaligned']:,} of {select['ifd']['rows']:,} rows "
                f"dropped as misaligned (IFD >= max_ifd) before the budget; median {select['ifd']['p50']}, "
                f"{select['ifd']['unscored']:,} without an IFD (one-token answers)"
            ]
            if "ifd" in select
            else []
        ),
        "",
        "### Per source",
        "",
        *table(
            ["source", "rows before", "rows after", f"{unit} before", f"{unit} after"],
            [
                [n, s["rows_before"], s["rows_after"], s["tokens_before"], s["tokens_after"]]
                for n, s in select["per_source"].items()
            ],
        ),
        "",
        "### Per cluster",
        "",
        f"![clusters]({plot_path(out, 'clusters').name})",
        "",
        *table(
            [
                "cluster",
                "label (top terms)",
                "rows before",
                "rows after",
                "quota",
                f"{unit} before",
                f"{unit} after",
                "mean score",
            ],
            [
                [
                    c["cluster"],
                    c["label"],
                    c["rows_before"],
                    c["rows_after"],
                    c["quota"] if c["quota"] is not None else "-",
                    c["tokens_before"],
                    c["tokens_after"],
                    c["mean_score"],
                ]
                for c in sorted(select["per_cluster"], key=lambda c: -c["rows_before"])
            ],
        ),
        "",
        "### Quality scores",
        "",
        f"Signals and weights: {', '.join(f'{k} {v}' for k, v in select['weights'].items())}"
        + (f"; model scorer {select['scorer']['kind']} `{select['scorer']['model']}`" if "scorer" in select else "")
        + " (prep/select/score.py).",
        "",
        f"![scores]({plot_path(out, 'scores').name})",
        "",
        *table(
            ["", "rows", "mean", "p10", "p50", "p90"],
            [
                [label, s["rows"], s.get("mean", "-"), s.get("p10", "-"), s.get("p50", "-"), s.get("p90", "-")]
                for label, s in (("before", select["scores_before"]), ("after", select["scores_after"]))
            ],
        ),
        "",
    ]
    return lines


def cuts_section(cuts: dict[str, Any] | None) -> list[str]:
    """Rows per source after each stage and the sources cut by more than twice the overall rate (the build's
    warnings, these included, have their own section)."""
    if not cuts:
        return []
    overall = cuts["overall_kept_share"]
    rows = [
        [
            f"{name} **(over-cut)**" if name in cuts["over_cut"] else name,
            *counts,
            "-" if cuts["kept_share"][name] is None else f"{cuts['kept_share'][name]:.1%}",
        ]
        for name, counts in cuts["rows"].items()
    ]
    return [
        "## Rows per source, stage by stage",
        "",
        *table(["source", *cuts["stages"], f"kept of the rows after {cuts['from']}"], rows),
        "",
        f"Overall {overall:.1%} of the rows after {cuts['from']} are kept. A source marked **(over-cut)** was cut "
        "by more than twice the overall rate: it "
        + (f"lost more than {2 * (1 - overall):.1%} of its rows, or " if overall > 0.5 else "")
        + f"kept under {overall / 2:.1%} (half the overall share kept).",
        "",
    ]


def card_files(out: Path, manifest: dict[str, Any]) -> dict[Path, bytes]:
    """OUT.card.md and, when the select step ran, its plots: path -> content, for the build to commit."""
    total = max(manifest["rows"], 1)
    unit = manifest.get("lengths", {}).get("unit", "chars")
    licences = manifest["licences"]
    select_unit = (manifest["steps"].get("select") or {}).get("unit")
    lines = [
        f"# Data card: {out.name}",
        "",
        f"{manifest['rows']:,} rows, seed {manifest['seed']}, sha256 `{manifest['sha256']}`; "
        f"steps: {', '.join(manifest['config']['curation']['steps']) or 'none'}.",
        "",
        "## Sources",
        "",
        *table(
            ["source", "licence", "read", "kept", "share", f"kept {unit}", "dropped"],
            [
                [
                    n,
                    manifest["config"]["sources"][i].get("licence") or "unknown",
                    s["read"],
                    s["kept"],
                    f"{s['kept'] / total:.1%}",
                    source_tokens(manifest, n),
                    sum(s["dropped"].values()),
                ]
                for i, (n, s) in enumerate(manifest["sources"].items())
            ],
        ),
        "",
        f"`kept {unit}`: per row, its system and user turns plus all its assistant turns (each side joined by "
        "newlines, no chat template), as the `length` filter counts them"
        + (" (so do the select tables below)." if select_unit == unit else "."),
        "",
        *cuts_section(manifest.get("cuts")),
        "## Licences of the kept rows",
        "",
        *[f"- {kind}: {', '.join(sources)}" for kind, sources in licences["kinds"].items()],
        "",
        *([f"**Warning:** {w}" for w in licences["warnings"]] or ["The kept sources' terms can be combined."]),
        "",
        "Rows generated by GPT-3.5/GPT-4 (the `teacher` field) also fall under OpenAI's terms of use.",
        "",
        *(["## Warnings", "", *(f"- {w}" for w in manifest["warnings"]), ""] if manifest.get("warnings") else []),
    ]
    files: dict[Path, bytes] = {}
    select = manifest["steps"].get("select")
    if select and select.get("rows_before"):
        lines += selection_section(select, out)
        files[plot_path(out, "clusters")] = plot_clusters(select)
        files[plot_path(out, "scores")] = plot_scores(select)
        if "mixture" in manifest["steps"]:
            lines += ["The `mixture` step ran after `select`: its caps may have dropped more rows (see Sources).", ""]
    lines += [
        "## Drops",
        "",
        *table(["reason", "rows"], sorted(manifest["totals"]["dropped"].items(), key=lambda kv: -kv[1])),
        "",
    ]
    return {card_path(out): "\n".join(lines).encode(), **files}
