"""Per-row cost of each curation step, and the language identifiers compared, on the shared samples.

    python bench/row_steps_bench.py [--repeat 5] [--glotlid path/to/model.bin]

Prints, in this process's CPU time (so the figures hold on a shared machine), for the demo mixture's steps
in pipeline order: microseconds per row of each row filter's `check` and each corpus step's `featurize`
(work two steps share, such as the prompt's word hashes, counts for the first); then, for the language
identifiers: rows/s and the share of the 1,675 rows read as English on the first 1,000 chars, and the rows
the language step drops at `sample_chars` 100 and 1,000. langdetect is
compared when it is installed (Axolotl brings it), GlotLID when a model file is given."""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import with_shared_paths  # noqa: E402

from prep.adapters import ADAPTERS  # noqa: E402
from prep.config import MixtureConfig  # noqa: E402
from prep.curation import curation_steps  # noqa: E402
from prep.filters.language import Language, LanguageConfig  # noqa: E402
from prep.readers import open_source, resolve_source  # noqa: E402
from prep.rows import Row  # noqa: E402
from prep.text import prompt_text, response_text  # noqa: E402

SHARED = REPO.parent / "shared/data"


def demo_config(shared: Path = SHARED) -> MixtureConfig:
    """prep/mixtures/demo.yml, reading the samples at `shared`."""
    raw = with_shared_paths(yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text()), shared.resolve())
    return MixtureConfig.model_validate(raw)


def demo_rows(shared: Path = SHARED) -> list[Row]:
    return sample_rows(demo_config(shared))


def sample_rows(config: MixtureConfig) -> list[Row]:
    rows = []
    for source in config.sources:
        records = open_source(source, resolve_source(source)).records
        rows += [ADAPTERS[source.format](r, source, i) for i, r in enumerate(records) if r.data is not None]
    return rows


def best_time(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def fresh(rows: list[Row]) -> list[Row]:
    return [Row(r.id, r.source, r.subsource, r.teacher, copy.deepcopy(r.conversations)) for r in rows]


def step_costs(config: MixtureConfig, rows: list[Row], repeat: int) -> None:
    curation = curation_steps(config, progress=False)
    timings: dict[str, list[float]] = {}
    for _ in range(repeat):
        batch = fresh(rows)
        for f in curation.filters:
            start = time.process_time()
            for row in batch:
                f.check(row)
            timings.setdefault(f.name, []).append(time.process_time() - start)
        for step in curation.corpus_steps:
            start = time.process_time()
            step.featurize(batch)
            timings.setdefault(f"{step.name} (featurize)", []).append(time.process_time() - start)
    print(f"per row, CPU time of one core, {len(rows)} sample rows, best of {repeat}:")
    for name, t in timings.items():
        print(f"  {name:28s} {min(t) / len(rows) * 1e6:7.1f} us")


def identifiers(rows: list[Row], repeat: int, glotlid: str | None) -> None:
    long_texts = [f"{prompt_text(r)[:1000]} {response_text(r)[:1000]}".replace("\n", " ") for r in rows]
    print(f"\nlanguage identifiers, CPU time of one core, {len(rows)} sample rows, best of {repeat}:")
    print(f"  {'identifier':34s} {'rows/s':>8s} {'English, 1000 chars':>20s} {'step drops':>10s}")
    backends = [("lid176", LanguageConfig())]
    if glotlid:
        backends.append(("glotlid", LanguageConfig(backend="glotlid", model=glotlid)))
    for name, config in backends:
        english = config.keep[0]
        for chars in (100, 1000):
            step = Language(config.model_copy(update={"sample_chars": chars}))
            seconds = best_time(lambda step=step: [step.check(r) for r in rows], repeat)
            drops = sum(step.check(r) is not None for r in rows)
            share = ""
            if chars == 1000:
                labels = [step._predict(t + "\n", 1, 0.0, "replace") for t in long_texts]
                share = f"{sum(bool(p) and p[0][1] == f'__label__{english}' for p in labels) / len(rows):.2%}"
            print(f"  {f'{name}, sample_chars {chars}':34s} {len(rows) / seconds:8,.0f} {share:>20s} {drops:10d}")
    try:
        import langdetect
    except ImportError:
        print("  langdetect: not installed")
        return
    langdetect.DetectorFactory.seed = 0

    def detect(text: str) -> str:
        try:
            return str(langdetect.detect(text))
        except langdetect.LangDetectException:  # no letters
            return "unknown"

    seconds = best_time(lambda: [detect(t) for t in long_texts], max(1, repeat // 5))
    share = sum(detect(t) == "en" for t in long_texts) / len(rows)
    print(f"  {'langdetect, 1000 chars':34s} {len(rows) / seconds:8,.0f} {share:>20.2%} {'-':>10s}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--glotlid", help="a GlotLID model.bin to compare too")
    args = ap.parse_args()
    config = demo_config(args.shared)
    rows = sample_rows(config)
    step_costs(config, rows, args.repeat)
    identifiers(rows, args.repeat, args.glotlid)


if __name__ == "__main__":
    main()
