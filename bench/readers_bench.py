"""What the safety checks on reading cost, on a JSON list made from the real WizardLM-layout sample.

    python bench/readers_bench.py --copies 200

Prints MB/s of ijson's plain `items` and of prep's JSON-list reader (nesting depth checked per event), and
sha256 throughput (the manifest's hash of every input file), each next to a reference run in the same process."""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import ijson
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.readers import read_json, sha256  # noqa: E402


def timed(label: str, size: int, run) -> float:
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    print(f"{label}: {size / seconds / 1e6:,.0f} MB/s")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=200, help="copies of the 500-row sample in the list")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared/data")
    args = ap.parse_args()
    rows = orjson.loads((args.shared / "evol_instruct/evol_instruct_v2_layout.json").read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.json"
        path.write_bytes(orjson.dumps(rows * args.copies))
        size = path.stat().st_size
        print(f"{len(rows) * args.copies} rows, {size / 1e6:.0f} MB (the page cache holds it)")

        def plain() -> None:
            with path.open("rb") as f:
                sum(1 for _ in ijson.items(f, "item", use_float=True))

        base = timed("ijson.items", size, plain)
        checked = timed("prep read_json (depth-checked)", size, lambda: sum(1 for _ in read_json(path)))
        print(f"  -> {checked / base:.1f}x ijson.items")
        timed("sha256 (prep.readers.sha256)", size, lambda: sha256(path))
        timed("  reference: hashlib.blake2b", size, lambda: hashlib.blake2b(path.read_bytes()).digest())


if __name__ == "__main__":
    main()
