"""The language identifier before and after issue 15, in one process on the same texts: the numba reading of
lid.176 this project used to ship (prep/filters/fasttext_lid.py, taken from git history) against the
fasttext-predict library the language step uses now. Needs a git checkout.

    python bench/lid_ab.py [--rev b23edac] [--repeat 5]

Prints CPU microseconds per text (one core, this process's CPU time, so the figures hold on a shared machine)
on the language step's own text of each of the 1,675 sample rows (100 chars of prompt and of response), their
ratio, and how many texts the two label differently."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from row_steps_bench import demo_rows  # noqa: E402

from prep.filters.language import Language, LanguageConfig, lid176_path  # noqa: E402
from prep.text import prompt_text, response_text  # noqa: E402


def old_predictor(rev: str) -> Any:
    """FastTextLID from the module as it was at `rev`."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:prep/filters/fasttext_lid.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "fasttext_lid_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fasttext_lid_old", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FastTextLID(lid176_path())


def cpu_per_text(predict: Callable[[str], object], texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for text in texts:
            predict(text)
        best = min(best, time.process_time() - start)
    return best / len(texts) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="b23edac", help="a commit that still has prep/filters/fasttext_lid.py")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    chars = LanguageConfig().sample_chars
    texts = [f"{prompt_text(r)[:chars]} {response_text(r)[:chars]}".replace("\n", " ") for r in demo_rows()]
    old = old_predictor(args.rev)
    new = Language(LanguageConfig())._predict

    def library(text: str) -> tuple[str, float]:
        ((score, label),) = new(text + "\n", 1, 0.0, "replace")
        return label.removeprefix("__label__"), score

    numba_us, library_us = cpu_per_text(old.predict, texts, args.repeat), cpu_per_text(library, texts, args.repeat)
    differ = sum(old.predict(t)[0] != library(t)[0] for t in texts)
    print(f"{len(texts)} texts, CPU per text, one core, best of {args.repeat}:")
    print(f"  numba reading of lid.176 ({args.rev})  {numba_us:6.1f} us")
    print(f"  fasttext-predict                 {library_us:6.1f} us   ({library_us / numba_us:.1f}x)")
    print(f"  texts labelled differently: {differ}")


if __name__ == "__main__":
    main()
