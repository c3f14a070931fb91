"""Faults at random points of a 100k-row `prep build` (the bench corpus, made from the real OpenOrca sample):
a screening worker SIGKILLed as the OOM killer does, Ctrl-C to the process group, SIGTERM to the main process.
Every run ends within seconds, leaves no file and no process behind, and the previous OUT and manifest stand
byte for byte; a rerun afterwards writes them again identically."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest
import yaml
from conftest import REPO

PREP = Path(sys.executable).parent / "prep"
ROWS = 100_000
FAULT_BUDGET_S = 60  # the faulted runs stop once they have taken this long (after two of each kind)
EXIT_WITHIN_S = 30  # a hang detector on a loaded 2-core machine, not a performance figure
EXPECTED = {"worker": {0, 1}, "sigint": {0, 130}, "sigterm": {0, 143}}
# 0: the fault came after the work it targets (the run then finishes normally and must match).


def corpus(shared_data: Path, path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from prep_bench import Corpus

    rows = Corpus(shared_data, seed=0)
    with path.open("wb") as f:
        for n in range(ROWS):
            f.write(orjson.dumps(rows.row(n)[0]) + b"\n")


def start(work: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PREP, "build", "--config", "mix.yml", "--out", "out.jsonl", "--workers", "2", "--no-progress"],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )


def workers(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    try:
        main = psutil.Process(proc.pid)
        return [c for c in main.children() if c.cmdline() == main.cmdline()]
    except psutil.Error:
        return []


def inject(kind: str, proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """Send the fault; returns the worker processes alive at that moment."""
    alive = workers(proc)
    if kind == "worker":
        while not alive and proc.poll() is None:  # setup (loading the steps) has no workers yet
            time.sleep(0.1)
            alive = workers(proc)
        if alive:
            os.kill(alive[0].pid, signal.SIGKILL)
    elif kind == "sigint":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    return alive


@pytest.mark.e2e
def test_faults_at_random_points_leave_the_previous_output_intact(tmp_path, shared_data):
    work = tmp_path
    corpus(shared_data, work / "corpus.jsonl")
    (work / "mix.yml").write_text(
        yaml.safe_dump(
            {
                "seed": 7,
                "sources": [{"name": "orca", "format": "openorca", "path": "corpus.jsonl"}],
                "curation": {"steps": ["quality", "exact_dedup", "near_dedup", "mixture"]},
            }
        )
    )
    began = time.monotonic()
    first = start(work)
    assert first.wait(timeout=600) == 0, first.stderr.read() if first.stderr else ""
    full = time.monotonic() - began
    reference = {name: (work / name).read_bytes() for name in ("out.jsonl", "out.jsonl.manifest.json")}
    assert orjson.loads(reference["out.jsonl.manifest.json"])["totals"]["read"] == ROWS
    listing = sorted(os.listdir(work))

    rng = random.Random(16)
    kinds = ["worker", "sigint", "sigterm"]
    runs: list[tuple[str, float, int]] = []
    faults_began = time.monotonic()
    while len(runs) < 2 * len(kinds) or time.monotonic() - faults_began < FAULT_BUDGET_S:
        kind = kinds[len(runs) % len(kinds)]
        delay = rng.uniform(0.5, full)
        proc = start(work)
        time.sleep(delay)
        alive = inject(kind, proc) if proc.poll() is None else []
        sent = time.monotonic()
        try:
            _, err = proc.communicate(timeout=EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{kind} at {delay:.1f}s: still running {EXIT_WITHIN_S}s later")
        runs.append((kind, round(delay, 1), proc.returncode))
        assert proc.returncode in EXPECTED[kind], (kind, delay, err)
        if proc.returncode == 1:
            assert "screening worker died" in err and "Traceback" not in err, err
        elif proc.returncode in (130, 143):
            assert "nothing was written" in err and "Traceback" not in err, err
        gone = psutil.wait_procs(alive, timeout=max(1.0, EXIT_WITHIN_S - (time.monotonic() - sent)))[1]
        assert not gone, f"{kind} at {delay:.1f}s left workers running: {gone}"
        assert sorted(os.listdir(work)) == listing, (kind, delay)
        assert {name: (work / name).read_bytes() for name in reference} == reference, (kind, delay)
        if len(runs) >= 30:
            break
    assert {code for kind, _, code in runs if kind != "worker"} - {0}, runs  # some signals did land mid-build
    rerun = start(work)
    assert rerun.wait(timeout=600) == 0
    assert {name: (work / name).read_bytes() for name in reference} == reference
    print(f"full build {full:.1f}s; faulted runs (kind, delay s, exit): {runs}")


DIES_MID_RESULT = """
import os, signal, struct
import orjson
from prep.errors import PrepError
from prep.lengths import LengthStats, TokenCounter
from prep.rows import Row
from prep.screen import Screen, Screening

class DiesMidResult:
    def featurize(self, rows):
        # what a worker SIGKILLed while sending a large result leaves in the pipe: a header and part of the body
        os.write(screening.pool._result_queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
        os.kill(os.getpid(), signal.SIGKILL)

screening = Screening(Screen([], [DiesMidResult()], LengthStats(TokenCounter(None))), workers=1)
row = Row("r0", "s", None, "gpt-4", [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}])
try:
    with screening:
        list(screening.submit(None, [row], [orjson.dumps(row.to_json())]))
        list(screening.finish())
except PrepError as e:
    print(e)
"""


def test_a_library_caller_exits_after_a_worker_died_mid_result(tmp_path):
    """`build()` called from Python (not the CLI, which leaves with os._exit): the executor's manager thread,
    left reading the rest of a dead worker's message, must not hold the interpreter's exit."""
    script = tmp_path / "caller.py"
    script.write_text(DIES_MID_RESULT)
    try:
        res = subprocess.run(
            [sys.executable, script],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the caller did not exit within {EXIT_WITHIN_S}s of the worker's death")
    assert res.returncode == 0 and "a screening worker died" in res.stdout, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
