"""Faults at random points of a 100k-row `prep build` (the bench corpus, made from the real OpenOrca sample):
a screening worker SIGKILLed as the OOM killer does, Ctrl-C to the process group, SIGTERM to the main process.
Every run ends within seconds, leaves no file and no process behind, and the previous OUT and manifest stand
byte for byte; a rerun afterwards writes them again identically."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import psutil
import pytest
import yaml
from conftest import REPO

from prep.config import MixtureConfig
from prep.outputs import TEMP_PREFIX, Outputs
from prep.pipeline import build

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


AFTER_THE_WORK = """
import os, signal, sys, time
from prep.signals import signals_as_exceptions

for s in (signal.SIGINT, signal.SIGTERM):  # the handlers from before the command: known, whatever was inherited
    signal.signal(s, lambda signum, frame: os._exit(99))
with signals_as_exceptions(until_exit=sys.argv[1] == "console"):
    print("wrote out.jsonl")  # buffered: stdout is a pipe
os.kill(os.getpid(), int(sys.argv[2]))  # the interpreter exiting after the command, as slow as it likes
time.sleep(30)
print("exited normally")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_work_is_done_ends_the_console_script_with_0(tmp_path, signum):
    """The window the random faults found: `prep build` has written everything and the process only exits.
    A console script then ends with its command's 0 and what it printed; in another caller the handlers from
    before the command come back (here one that exits 99)."""
    script = tmp_path / "after.py"
    script.write_text(AFTER_THE_WORK)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(REPO)}

    def run(caller: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, script, caller, str(int(signum))], env=env, capture_output=True,
                              text=True, timeout=EXIT_WITHIN_S)  # fmt: skip

    console = run("console")
    assert (console.returncode, console.stdout) == (0, "wrote out.jsonl\n"), console
    library = run("library")
    assert (library.returncode, library.stdout) == (99, ""), library  # its os._exit lost the buffered line


DIES_MID_RESULT = """
import os, signal, struct
import orjson
from prep.errors import PrepError
from prep.rows import Row
from prep.screen import Screen, Screening

class DiesMidResult:
    def featurize(self, rows):
        # what a worker SIGKILLed while sending a large result leaves in the pipe: a header and part of the body
        os.write(screening.pool._result_queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"x" * 100)
        os.kill(os.getpid(), signal.SIGKILL)

screening = Screening(Screen([], [DiesMidResult()]), workers=1)
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


# ---- the commit: every output of a build replaced together, or none ----

SET = ["out.jsonl", "out.jsonl.manifest.json", "out.jsonl.card.md", "out.jsonl.card.clusters.png", "dropped.jsonl"]


def staged_set(work: Path) -> tuple[Outputs, dict[str, bytes]]:
    """A new version of every file of a previous set (one of them new), and the removal of a stale plot; the
    previous set's files."""
    for name in [*SET[:3], SET[4], "out.jsonl.card.scores.png"]:
        (work / name).write_bytes(f"previous {name}\n".encode())
    before = files_in(work)
    outputs = Outputs()
    for name in SET:
        outputs.open(work / name).write(f"new {name}\n".encode())
    outputs.remove(work / "out.jsonl.card.scores.png")
    return outputs, before


def files_in(work: Path) -> dict[str, bytes]:
    """What a reader sees: the files, less the temps a later build sweeps (a backup whose removal failed)."""
    return {p.name: p.read_bytes() for p in work.iterdir() if not p.name.startswith(TEMP_PREFIX)}


def fails_at(real: Callable[..., object], at: int) -> Callable[..., object]:
    """`real`, failing (EIO) at its `at`-th call."""
    calls = 0

    def call(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == at:
            raise OSError(errno.EIO, "injected", str(args[0]))
        return real(*args, **kwargs)

    return call


@pytest.mark.parametrize("call", ["replace", "link", "unlink"])
def test_a_commit_that_fails_at_any_step_leaves_the_previous_set_whole(tmp_path, monkeypatch, call):
    """Each rename (and each link that keeps an old file, and the removal of a stale file) made to fail in turn:
    the files already replaced get their previous versions back, the new file goes, nothing else is left."""
    real = getattr(os, call)
    steps = 0
    while True:
        work = tmp_path / f"{call}{steps}"
        work.mkdir()
        outputs, before = staged_set(work)
        monkeypatch.setattr(os, call, fails_at(real, steps + 1))
        try:
            outputs.commit()
        except OSError as e:
            assert e.strerror == "injected"
        else:
            break  # every step of the commit has failed once
        finally:
            monkeypatch.setattr(os, call, real)
            outputs.discard()
        assert set(os.listdir(work)) == set(before) and files_in(work) == before, (call, steps)
        steps += 1
    # 5 files (4 with an old version, kept by a link while the commit runs) and a stale plot to remove; the
    # links' removal after a commit is best effort (the next build sweeps what is left)
    assert steps == {"replace": 5, "link": 5, "unlink": 1}[call]
    assert files_in(work) == {n: f"new {n}\n".encode() for n in SET}


def test_a_build_whose_commit_fails_keeps_its_previous_output_card_and_plots(tmp_path, shared_data, monkeypatch):
    """The data card and its plots are outputs of the build, committed with OUT and the manifest: a failure at
    the last rename leaves the previous set (select's plots too); a build without select then removes them."""
    source = {"name": "o", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")}

    def config(budget: int | None) -> MixtureConfig:
        steps = {"steps": ["quality", "select"], "select": {"budget": {"rows": budget}}} if budget else {"steps": []}
        return MixtureConfig.model_validate({"sources": [source], "curation": steps})

    out, dropped = tmp_path / "out.jsonl", tmp_path / "dropped.jsonl"
    build(config(400), out, dropped=dropped, progress=False, workers=0)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(files) == {*SET, "out.jsonl.card.scores.png"}
    real, calls = os.replace, []

    def last_fails(src: object, dst: object) -> None:
        if Path(str(dst)).parent == tmp_path:  # the commit's renames (not a library's cache files)
            calls.append(Path(str(dst)).name)
            if len(calls) == len(files):
                raise OSError(errno.EIO, "injected", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", last_fails)
    with pytest.raises(OSError, match="injected"):
        build(config(300), out, dropped=dropped, progress=False, workers=0)
    monkeypatch.setattr(os, "replace", real)
    assert sorted(calls[: len(files)]) == sorted(files)  # every file of the set was being replaced
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    manifest = build(config(None), out, dropped=dropped, progress=False, workers=0)
    assert {p.name for p in tmp_path.iterdir()} == set(SET) - {"out.jsonl.card.clusters.png"}
    assert "## Selection" not in (tmp_path / "out.jsonl.card.md").read_text()
    assert manifest["rows"] == manifest["totals"]["read"]
