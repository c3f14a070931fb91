"""The `prep` command line."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from prep.card import card_path
from prep.cli_errors import CommandGroup
from prep.config import load_config
from prep.pipeline import build, manifest_path
from prep.sizing.fit import fit

console = Console(stderr=True)


@click.group(cls=CommandGroup)
@click.option("--debug", is_flag=True, help="Show the traceback of an error, not only its one-line message.")
def main(debug: bool) -> None:
    """Build the curated ShareGPT mixture that the Axolotl recipes train on."""


@main.command("build")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Mixture YAML (see prep/mixtures/).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output ShareGPT JSONL.")
@click.option("--strict", is_flag=True, help="Stop at the first malformed row instead of counting it as dropped.")
@click.option(
    "--dropped",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every dropped row with its reason to this JSONL.",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0, max=256),
    default=None,
    help="Processes that run the row filters (default: one per core; 0: none). Same output for any.",
)
def build_cmd(
    config_path: Path, out: Path, strict: bool, dropped: Path | None, progress: bool, workers: int | None
) -> None:
    """Read the sources in CONFIG, curate them and write one ShareGPT JSONL plus OUT.manifest.json."""
    config = load_config(config_path)
    manifest = build(
        config, out, strict=strict, dropped=dropped, progress=progress, workers=workers, config_path=config_path
    )
    print_summary(manifest)
    for warning in [*manifest["warnings"], *manifest["licences"]["warnings"]]:
        console.print(Text.assemble(("warning:", "yellow"), f" {warning}"))
    console.print(f"wrote {out} ({manifest['rows']} rows), {manifest_path(out)} and {card_path(out)}")


def print_summary(manifest: dict) -> None:
    table = Table(title="prep build")
    for col in ("source", "read", "kept", "dropped", "top drop reasons"):
        table.add_column(col, justify="left" if col in ("source", "top drop reasons") else "right")
    for name, s in manifest["sources"].items():
        reasons = sorted(s["dropped"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            name,
            str(s["read"]),
            str(s["kept"]),
            str(sum(s["dropped"].values())),
            ", ".join(f"{r} {n}" for r, n in reasons),
        )
    t = manifest["totals"]
    table.add_row("total", str(t["read"]), str(t["kept"]), str(sum(t["dropped"].values())), "")
    console.print(table)
    for name, audit in manifest["inputs"].items():
        who = f"source {name!r}" if name in manifest["sources"] else name
        for skipped in audit.get("skipped", []):
            console.print(f"{who}: skipped {skipped['path']}: {skipped['reason']}", markup=False)


@main.command("decontam-report")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0), help="Items listed per benchmark.")
def decontam_report_cmd(manifest: Path, limit: int) -> None:
    """Which benchmark items a `prep build` found in the training rows (MANIFEST is OUT.manifest.json)."""
    from prep.decontam.report import read_report

    for title, hits in read_report(manifest):
        table = Table(title=title)
        for col in ("item", "rows", "question", "row ids"):
            table.add_column(col, overflow="fold")
        for key, rows, question, row_ids in hits[:limit]:
            table.add_row(key, str(rows), question[:80], ", ".join(row_ids))
        Console().print(table)


@main.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also write the shares as a PNG.")
def compare_cmd(a: Path, b: Path, plot: Path | None) -> None:
    """Two mixtures side by side: A and B are OUT.manifest.json files of `prep build`."""
    from prep.compare import compare_table, plot_shares
    from prep.outputs import atomic_output, refuse_aliases, refuse_companion_names

    if plot:  # never over a manifest, or the build files beside it
        refuse_companion_names({"--plot": plot})
        builds = [(name, m.with_name(m.name.removesuffix(".manifest.json"))) for name, m in (("A", a), ("B", b))]
        refuse_aliases({"--plot": plot}, [("A", a), ("B", b), *((f"{n}'s output", out) for n, out in builds)])
    table, ma, mb = compare_table(a, b)
    Console().print(table)
    if plot:
        with atomic_output(plot) as f:
            f.write(plot_shares(a, ma, b, mb))
        console.print(f"wrote {plot}")


@main.command("tiny-llama")
@click.option(
    "--text",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A ShareGPT JSONL (a `prep build` output) to train the tokenizer on.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--vocab-size", default=2048, show_default=True, type=click.IntRange(min=300, max=1_000_000))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0, max=2**32 - 1))
def tiny_llama_cmd(text: Path, out: Path, vocab_size: int, seed: int) -> None:
    """Build the 2-layer random Llama that recipes/smoke-tiny.yml trains on CPU."""
    from prep.tiny_llama import build_tiny_llama, check_out, conversation_texts

    check_out(out, text)
    for _ in conversation_texts(text):
        pass  # a bad line fails now, before torch and transformers load (and print their own noise)
    build_tiny_llama(out, conversation_texts(text), vocab_size=vocab_size, seed=seed)
    console.print(f"wrote a tiny Llama to {out}")


main.add_command(fit)
