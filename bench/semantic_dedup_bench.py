"""Semantic dedup's recall and precision on a planted set, with the real all-MiniLM-L6-v2 (`make models`).

    python bench/semantic_dedup_bench.py [--model .cache/models/all-MiniLM-L6-v2] [--thresholds 0.7 0.8 0.9]

The planted set (tests/fixtures/semantic_planted.json, written for the test) holds 30 paraphrase pairs
(different words, the same request: one row of each should go) and 30 look-alike pairs (the same template, a
different request: both should stay), among `--background` real OpenOrca prompts. Each threshold runs a real
`prep build` with `semantic_dedup` alone and reads its --dropped file, whose records name the kept row each
duplicate copies. Recall: paraphrase pairs collapsed onto their partner / 30. Precision: of the drops that
touch a planted row (dropped, or named as the kept copy), those that dropped a paraphrase for its partner."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.config import MixtureConfig  # noqa: E402
from prep.pipeline import build  # noqa: E402

PLANTED = REPO / "tests/fixtures/semantic_planted.json"
KEPT = re.compile(r"^duplicate of (\S+) \(kept\)")


def planted_sources(tmp: Path, shared: Path, background: int) -> tuple[list[dict], dict[str, str]]:
    """The sources (planted rows, then real OpenOrca prompts) and each paraphrase row's partner, by row id."""
    data = orjson.loads(PLANTED.read_bytes())
    prompts: dict[str, str] = {}  # prompt -> id: a prompt written into both lists is one row
    partner: dict[str, str] = {}
    for kind, pairs in (("p", data["paraphrases"]), ("l", data["lookalikes"])):
        for n, pair in enumerate(pairs):
            ids = [prompts.setdefault(text, f"planted/{kind}{n}{side}") for side, text in zip("ab", pair, strict=True)]
            if kind == "p":
                partner[ids[0]], partner[ids[1]] = ids[1], ids[0]
    rows = [
        {
            "id": i.removeprefix("planted/"),
            "conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": "-"}],
        }
        for p, i in prompts.items()
    ]
    (tmp / "planted.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    orca = (shared / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()[:background]
    (tmp / "orca.jsonl").write_bytes(b"".join(line + b"\n" for line in orca))
    sources = [
        {"name": "planted", "format": "sharegpt", "path": str(tmp / "planted.jsonl")},
        {"name": "orca", "format": "openorca", "path": str(tmp / "orca.jsonl")},
    ]
    return sources, partner


def recall_precision(dropped: Path, partner: dict[str, str]) -> tuple[int, int, int, int]:
    """(paraphrase rows dropped for their partner, drops touching a planted row, paraphrase pairs, drops among
    the background alone) from a build's --dropped file."""
    correct = touching = background = 0
    for line in dropped.read_bytes().splitlines():
        record = orjson.loads(line)
        row_id = record["row"]["id"]
        match = KEPT.match(record["detail"])
        assert match, record["detail"]
        kept = match.group(1)
        if row_id.startswith("planted/") or kept.startswith("planted/"):
            touching += 1
            correct += partner.get(row_id) == kept
        else:
            background += 1
    return correct, touching, len(partner) // 2, background


def run(model: str, threshold: float, sources: list[dict], tmp: Path, device: str = "cpu") -> Path:
    config = MixtureConfig.model_validate(
        {
            "seed": 0,
            "sources": sources,
            "curation": {
                "steps": ["semantic_dedup"],
                "semantic_dedup": {"model": model, "threshold": threshold, "device": device},
            },
        }
    )
    build(config, tmp / "out.jsonl", dropped=tmp / "dropped.jsonl", progress=False, workers=0)
    return tmp / "dropped.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / ".cache/models/all-MiniLM-L6-v2"))
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.7, 0.75, 0.8, 0.85, 0.9])
    parser.add_argument("--background", type=int, default=200, help="real OpenOrca prompts beside the planted set")
    parser.add_argument("--data", default=str(REPO.parent / "shared/data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sources, partner = planted_sources(Path(tmp), Path(args.data), args.background)
        for threshold in args.thresholds:
            correct, touching, pairs, background = recall_precision(
                run(args.model, threshold, sources, Path(tmp)), partner
            )
            print(
                f"threshold {threshold:.2f}: recall {correct / pairs:.3f} ({correct}/{pairs} paraphrase pairs), "
                f"precision {correct / max(touching, 1):.3f} ({correct}/{touching} drops touching a planted row); "
                f"{background} drops among the {args.background} OpenOrca prompts"
            )


if __name__ == "__main__":
    main()
