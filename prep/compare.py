"""`prep compare A.manifest.json B.manifest.json`: two mixtures side by side (shares, rows and tokens per
source, variety, GPT-4 share, scores, licences), as a table and, with --plot, a bar chart of the shares. Each
manifest's fields are checked before any is shown: a damaged one is one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.table import Table

from prep.card import png, source_tokens
from prep.errors import PrepError, validation_message
from prep.manifests import HINT, read_manifest


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class _SourceCounts(_Open):
    kept: int = Field(ge=0)


class _Lengths(_Open):
    rows: int = Field(0, ge=0)
    total: int = Field(0, ge=0)
    mean: float = Field(0, ge=0)


class _Curation(_Open):
    steps: list[str]


class _Config(_Open):
    curation: _Curation


class _Licences(_Open):
    kept: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


class _Scores(_Open):
    mean: float = 0
    p50: float = 0


class _Select(_Open):
    rows_before: int = Field(0, ge=0)
    variety_before: float = 0
    variety_after: float = 0
    clusters: int = 0
    gpt4_share_before: float = 0
    gpt4_share_after: float = 0
    scores_after: _Scores = Field(default_factory=_Scores)
    budget: dict[str, int] | None = None

    @model_validator(mode="after")
    def _complete(self) -> _Select:
        """A select step that kept rows reports every figure compare shows."""
        if self.rows_before and (missing := sorted(set(type(self).model_fields) - self.model_fields_set)):
            raise ValueError(f"steps.select lacks {', '.join(missing)}")
        return self


class _Steps(_Open):
    select: _Select | None = None


class _Manifest(_Open):
    """The fields `prep compare` reads; the rest of a manifest may be anything."""

    rows: int = Field(ge=0)
    sources: dict[str, _SourceCounts]
    mix_shares: dict[str, float]
    config: _Config
    lengths: dict[str, _Lengths | str] = Field(default_factory=dict)

    @field_validator("lengths")
    @classmethod
    def _unit(cls, lengths: dict[str, _Lengths | str]) -> dict[str, _Lengths | str]:
        if not isinstance(lengths.get("unit", ""), str) or any(
            isinstance(v, str) for k, v in lengths.items() if k != "unit"
        ):
            raise ValueError("lengths holds `unit` (a string) and per source its figures")
        return lengths

    steps: _Steps = Field(default_factory=_Steps)
    licences: _Licences | None = None


def load_manifest(path: Path) -> dict[str, Any]:
    manifest = read_manifest(path)
    if "sources" not in manifest or "mix_shares" not in manifest:
        raise PrepError(f"{path}: not a `prep build` manifest (no `sources`/`mix_shares`); {HINT}")
    try:
        _Manifest.model_validate(manifest)
    except ValidationError as e:
        raise PrepError(f"{path}: a damaged build manifest: {validation_message(e)}; rebuild it") from e
    return manifest


def rows(manifest: dict[str, Any], sources: list[str]) -> list[tuple[str, str]]:
    """(metric, value) in a fixed order, '-' where the build does not have it."""
    unit = manifest.get("lengths", {}).get("unit", "chars")
    select = manifest.get("steps", {}).get("select") or {}
    total = sum(source_tokens(manifest, s) for s in manifest["sources"])
    out = [("rows", f"{manifest['rows']:,}"), (unit, f"{total:,}")]
    for s in sources:
        kept = manifest["sources"].get(s, {}).get("kept")
        share = manifest["mix_shares"].get(s, 0.0)
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
    licences = manifest.get("licences") or {}
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


def plot_shares(a: Path, ma: dict[str, Any], b: Path, mb: dict[str, Any]) -> bytes:
    """The two mixtures' shares per source as a bar chart (PNG bytes)."""
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
    return png(fig)
