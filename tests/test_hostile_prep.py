"""Hostile but fair use of the real `prep` CLI (a subprocess, as a user runs it): bad configs, files, paths and
outputs. Each refused case exits 1 with one line naming the culprit and no traceback, and leaves no file
behind; each finished build balances (read == kept + dropped) and lists what it read."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from conftest import REPO

PREP = Path(sys.executable).parent / "prep"
NO_CURATION = {"steps": []}


def prep(
    *args: object, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """The installed `prep` script, running this checkout's code, offline."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [str(PREP), *map(str, args)], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


def refused(res: subprocess.CompletedProcess, *culprits: str) -> str:
    """The run failed with exactly one line that names every culprit."""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])
    return lines[0]


def balanced(manifest_file: Path) -> dict:
    manifest = orjson.loads(manifest_file.read_bytes())
    for s in [*manifest["sources"].values(), manifest["totals"]]:
        assert s["read"] == s["kept"] + sum(s["dropped"].values())
    return manifest


def listing(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture
def orca(shared_data: Path) -> list[dict]:
    lines = (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()
    return [orjson.loads(x) for x in lines[:200]]


def config_file(tmp_path: Path, sources: list[dict], name: str = "mix.yml", **top: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"sources": sources, "curation": NO_CURATION, **top}))
    return path


def jsonl(rows: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def build(tmp_path: Path, config: Path, *extra: object, out: str = "out.jsonl") -> subprocess.CompletedProcess:
    return prep(
        "build", "--config", config, "--out", tmp_path / out, "--no-progress", "--workers", 0, *extra, cwd=tmp_path
    )


# ---- configs: bounded, strict parsing; values that cannot run refused before any data is read ----

ALIAS_BOMB = "\n".join(
    [
        "sources: [{name: a, format: openorca, path: a.jsonl}]",
        'x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)),
        f"extra: [{','.join(['*a8'] * 9)}]",
    ]
)


@pytest.mark.parametrize(
    "text, culprits",
    [
        (ALIAS_BOMB, ["mix.yml", "aliases"]),
        (
            "sources: [{name: a, format: openorca, path: a.jsonl}]\nseed: 1\nseed: 2\n",
            ["mix.yml:3", "duplicate key 'seed'"],
        ),
        ("sources: []\nsources: [{name: a, format: openorca, path: a.jsonl}]\n", ["duplicate key 'sources'"]),
        ("sources: [{name: a, format: openorca, path: a.jsonl\n", ["mix.yml:2", "invalid YAML"]),
        ("- just\n- a list\n", ["mix.yml", "a mapping with `sources:`"]),
        ("sources: [{name: a, format: openorca, path: a.jsonl}]\nseed: -1\n", ["seed", "-1"]),
        ("sources: [{name: a, format: openorca, path: a.jsonl}]\nseed: 100000000000000000000000\n", ["seed"]),
        ("sources: [{name: a, format: openorca, path: a.jsonl, dat_files: x}]\n", ["sources[0].dat_files"]),
        (
            "sources: [{name: a, format: openorca, path: a.jsonl}]\n"
            "curation: {steps: [mixture], mixture: {sources: {a: {weight: .inf}}}}\n",
            ["curation.mixture.sources.a.weight"],
        ),
        (
            "sources: [{name: a, format: openorca, path: a.jsonl}]\ncuration: {steps: [language], language: {keep: [english]}}\n",
            ["curation.language.keep", "english"],
        ),
        ("sources: [{name: a, format: csv, path: a.jsonl}]\n", ["sources[0].format", "csv"]),
    ],
)
def test_bad_config_is_one_line_before_any_data_is_read(tmp_path, orca, text, culprits):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    (tmp_path / "mix.yml").write_text(text)
    before = listing(tmp_path)
    start = time.monotonic()
    refused(build(tmp_path, tmp_path / "mix.yml"), *culprits)
    assert time.monotonic() - start < 60  # the alias bomb took minutes and GBs before
    assert listing(tmp_path) == before


def test_config_encoding_and_size(tmp_path):
    bad = tmp_path / "latin1.yml"
    bad.write_bytes("sources: [{name: caf\xe9, format: openorca, path: a.jsonl}]\n".encode("latin-1"))
    refused(build(tmp_path, bad), "latin1.yml:1", "not UTF-8")
    huge = tmp_path / "huge.yml"
    huge.write_text("sources: []\n" + "# padding\n" * 200_000)
    refused(build(tmp_path, huge), "huge.yml", "larger than")
    assert listing(tmp_path) == {"latin1.yml", "huge.yml"}


def test_offline_hub_ids_and_mistyped_paths(tmp_path, orca):
    """The default config offline, and relative paths that do not exist: one line each, no tokenizer load."""
    refused(build(tmp_path, REPO / "prep/mixtures/default.yml"), "openorca_gpt4", "Open-Orca/OpenOrca", "offline")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/orca.jsonl").write_bytes(jsonl(orca))
    typo_dir = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "dta/orca"}])
    refused(build(tmp_path, typo_dir), "'o'", "dta/orca", "offline")  # looks like a hub id: both readings named
    typo_file = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "data/orka.jsonl"}])
    refused(build(tmp_path, typo_file), "'o'", "data/orka.jsonl", "no such file")
    tokenizer = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "data/orca.jsonl"}])
    cfg = yaml.safe_load(tokenizer.read_text())
    cfg["curation"] = {"steps": ["quality"], "tokenizer": "nobody/no-tokenizer"}
    tokenizer.write_text(yaml.safe_dump(cfg))
    refused(build(tmp_path, tokenizer), "curation.tokenizer", "nobody/no-tokenizer")
    dotted = config_file(tmp_path, [{"name": "h", "format": "sharegpt", "path": "teknium/OpenHermes-2.5"}])
    refused(build(tmp_path, dotted), "'h'", "teknium/OpenHermes-2.5", "offline")  # a hub id, dot and all
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".prep-*"))


# ---- input files: every file read or reported, compressed and upper-case ones read, bad ones named ----


def test_directory_source_reads_every_readable_file_and_reports_the_rest(tmp_path, orca):
    d = tmp_path / "orca"
    d.mkdir()
    (d / "a.jsonl").write_bytes(jsonl(orca[:50]))
    (d / "b.JSONL").write_bytes(jsonl(orca[50:100]))
    (d / "c.jsonl.gz").write_bytes(gzip.compress(jsonl(orca[100:150])))
    (d / "d.json.zst").write_bytes(zstandard.ZstdCompressor().compress(orjson.dumps(orca[150:200])))
    (d / "e.csv").write_text("question,response\nq,r\n")
    (d / "nested").mkdir()
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": str(d)}])
    res = build(tmp_path, config)
    assert res.returncode == 0, res.stderr
    assert "skipped" in res.stderr and "e.csv" in res.stderr and "nested" in res.stderr
    manifest = balanced(tmp_path / "out.jsonl.manifest.json")
    assert manifest["sources"]["o"] == {"read": 200, "kept": 200, "dropped": {}}
    read = manifest["inputs"]["o"]["files"]
    assert [Path(f["path"]).name for f in read] == ["a.jsonl", "b.JSONL", "c.jsonl.gz", "d.json.zst"]
    for f in read:
        assert f["bytes"] == Path(f["path"]).stat().st_size
        assert f["sha256"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest()
    skipped = {Path(s["path"]).name: s["reason"] for s in manifest["inputs"]["o"]["skipped"]}
    assert set(skipped) == {"e.csv", "nested"} and "unsupported file type .csv" in skipped["e.csv"]
    assert [orjson.loads(x)["id"] for x in (tmp_path / "out.jsonl").read_bytes().splitlines()] == [
        f"o/{r['id']}" for r in orca
    ]


@pytest.mark.parametrize(
    "name, content, culprits",
    [
        ("empty.parquet", b"", ["empty.parquet", "re-download"]),
        ("cut.parquet", None, ["cut.parquet"]),  # the first half of a real parquet file
        ("rows.csv", b"question,response\nq,r\n", ["rows.csv", "unsupported file type .csv"]),
        ("rows.jsonl.gz", None, ["rows.jsonl.gz", "after row"]),  # a gzip cut short
        ("deep.json", b"[" + b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}]", ["deep.json", "nested deeper"]),
        ("broken.json", b'[{"question": "q", "response": "r"}, {"question": ', ["broken.json", "after item 1"]),
    ],
)
def test_bad_input_file_is_named(tmp_path, shared_data, orca, name, content, culprits):
    path = tmp_path / name
    if name == "cut.parquet":
        data = (shared_data / "openorca/openorca_gpt4_sample.parquet").read_bytes()
        content = data[: len(data) // 2]
    elif name == "rows.jsonl.gz":
        data = gzip.compress(jsonl(orca))
        content = data[: len(data) // 2]
    assert content is not None
    path.write_bytes(content)
    (tmp_path / "out.jsonl").write_text("previous\n")
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": name}])
    before = listing(tmp_path)
    refused(build(tmp_path, config), *culprits)
    assert listing(tmp_path) == before and (tmp_path / "out.jsonl").read_text() == "previous\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_named(tmp_path, orca):
    path = tmp_path / "locked.jsonl"
    path.write_bytes(jsonl(orca))
    path.chmod(0)
    refused(build(tmp_path, config_file(tmp_path, [{"name": "o", "format": "openorca", "path": path.name}])), "locked")


def test_lone_surrogate_is_dropped_alike_in_a_json_list_and_in_jsonl(tmp_path, orca):
    rows = orca[:5]
    text = orjson.dumps(rows).replace(b'"question":"', b'"question":"\\ud800', 1)
    (tmp_path / "list.json").write_bytes(text)
    lines = jsonl(rows).replace(b'"question":"', b'"question":"\\ud800', 1)
    (tmp_path / "lines.jsonl").write_bytes(lines)
    sources = [
        {"name": "as_list", "format": "openorca", "path": "list.json"},
        {"name": "as_lines", "format": "openorca", "path": "lines.jsonl"},
    ]
    res = build(tmp_path, config_file(tmp_path, sources), "--dropped", tmp_path / "dropped.jsonl")
    assert res.returncode == 0, res.stderr
    manifest = balanced(tmp_path / "out.jsonl.manifest.json")
    assert manifest["sources"]["as_list"] == manifest["sources"]["as_lines"]
    assert manifest["sources"]["as_list"] == {"read": 5, "kept": 4, "dropped": {"invalid_json": 1}}
    dropped = [orjson.loads(x) for x in (tmp_path / "dropped.jsonl").read_bytes().splitlines()]
    assert [d["where"] for d in dropped] == ["list.json row 1", "lines.jsonl row 1"]


def test_dropped_rows_with_a_binary_column(tmp_path, orca):
    table = pa.Table.from_pylist(orca[:10])
    table = table.set_column(
        table.schema.get_field_index("response"), "response", pa.array([r["response"].encode() for r in orca[:10]])
    )
    pq.write_table(table, tmp_path / "bin.parquet")
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "bin.parquet"}])
    res = build(tmp_path, config, "--dropped", tmp_path / "dropped.jsonl")
    assert res.returncode == 0, res.stderr
    assert balanced(tmp_path / "out.jsonl.manifest.json")["sources"]["o"]["dropped"] == {"not_a_string": 10}
    dropped = [orjson.loads(x) for x in (tmp_path / "dropped.jsonl").read_bytes().splitlines()]
    assert len(dropped) == 10 and dropped[0]["row"]["response"]["base64"]


@pytest.mark.parametrize(
    "name, content, culprits",
    [
        (
            "mmlu.csv",
            "question,choice0,choice1,choice2,choice3,answer\nCaf\xe9?,a,b,c,d,0\n".encode("latin-1"),
            ["mmlu.csv", "not UTF-8"],
        ),
        ("mmlu.jsonl", b'{"question": "q", "choices": ["a"]}\n{"question": \n', ["mmlu.jsonl line 2"]),
        ("mmlu.tsv", b"q\ta\n", ["mmlu.tsv", "unsupported file type"]),
    ],
)
def test_bad_benchmark_file_is_named(tmp_path, orca, name, content, culprits):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    (tmp_path / name).write_bytes(content)
    curation = {"steps": ["decontam"], "decontam": {"benchmarks": [{"name": "mmlu", "path": name}]}}
    config = tmp_path / "mix.yml"
    config.write_text(
        yaml.safe_dump({"sources": [{"name": "o", "format": "openorca", "path": "a.jsonl"}], "curation": curation})
    )
    refused(build(tmp_path, config), *culprits)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".prep-*"))


# ---- outputs: never an input or each other; commit together; modes follow the umask; no debris ----


def test_outputs_that_alias_an_input_or_each_other_are_refused(tmp_path, orca):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "a.jsonl"}])
    assert build(tmp_path, config).returncode == 0
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "a.jsonl")
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    refused(build(tmp_path, config, "--dropped", tmp_path / "out.jsonl"), "--dropped", "--out")
    refused(build(tmp_path, config, "--dropped", tmp_path / "out.jsonl.manifest.json"), "--dropped", "manifest")
    refused(build(tmp_path, config, out="a.jsonl"), "--out", "source 'o'")
    refused(build(tmp_path, config, out="link.jsonl"), "--out", "source 'o'")
    refused(build(tmp_path, config, out="mix.yml"), "--out", "the config")
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_outputs_that_alias_any_file_of_a_directory_or_a_benchmark_are_refused(tmp_path, shared_data, orca):
    """Every file a directory source or a benchmark reads is an input: each is refused as an output, and the
    manifest lists the benchmark files with their hashes beside the sources'."""
    (tmp_path / "orca").mkdir()
    (tmp_path / "orca/a.jsonl").write_bytes(jsonl(orca[:100]))
    (tmp_path / "orca/b.jsonl").write_bytes(jsonl(orca[100:]))
    (tmp_path / "mmlu").mkdir()
    for name in ("abstract_algebra_test.csv", "anatomy_test.csv"):
        (tmp_path / "mmlu" / name).write_bytes((shared_data / "mmlu/test" / name).read_bytes())
    (tmp_path / "mmlu/README.md").write_text("two MMLU subjects\n")
    hellaswag = tmp_path / "hellaswag.txt"
    hellaswag.write_bytes((shared_data / "hellaswag/hellaswag_val_full.txt").read_bytes())
    benchmarks = [{"name": "mmlu", "path": "mmlu"}, {"name": "hellaswag", "path": "hellaswag.txt"}]
    config = tmp_path / "mix.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": [{"name": "o", "format": "openorca", "path": "orca"}],
                "curation": {"steps": ["decontam"], "decontam": {"benchmarks": benchmarks}},
            }
        )
    )
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    refused(build(tmp_path, config, out="orca/a.jsonl"), "--out", "source 'o'")
    refused(build(tmp_path, config, out="orca/b.jsonl"), "--out", "source 'o'")
    refused(build(tmp_path, config, out="mmlu/anatomy_test.csv"), "--out", "decontam.benchmarks[0] (mmlu)")
    refused(build(tmp_path, config, "--dropped", hellaswag), "--dropped", "decontam.benchmarks[1] (hellaswag)")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    res = build(tmp_path, config)
    assert res.returncode == 0, res.stderr
    assert "decontam.benchmarks[0] (mmlu): skipped" in res.stderr and "README.md" in res.stderr
    inputs = balanced(tmp_path / "out.jsonl.manifest.json")["inputs"]
    assert set(inputs) == {"o", "decontam.benchmarks[0] (mmlu)", "decontam.benchmarks[1] (hellaswag)"}
    mmlu, hella = inputs["decontam.benchmarks[0] (mmlu)"], inputs["decontam.benchmarks[1] (hellaswag)"]
    assert [Path(f["path"]).name for f in mmlu["files"]] == ["abstract_algebra_test.csv", "anatomy_test.csv"]
    assert [Path(s["path"]).name for s in mmlu["skipped"]] == ["README.md"]
    for f in [*mmlu["files"], *hella["files"], *inputs["o"]["files"]]:  # paths as the config gives them
        assert f["bytes"] == (tmp_path / f["path"]).stat().st_size
        assert f["sha256"] == hashlib.sha256((tmp_path / f["path"]).read_bytes()).hexdigest()


def test_modes_follow_the_umask_and_stale_debris_is_swept(tmp_path, orca):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "a.jsonl"}])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".prep-build.{dead.stdout.strip()}.abc"
    stale.mkdir()
    (stale / ".prep-spill.x.jsonl").write_bytes(b"x" * 1000)
    for umask, mode in ((0o027, 0o640), (0o022, 0o644)):
        res = subprocess.run(
            ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh", PREP, "build", "--config", config, "--out",
             tmp_path / "out.jsonl", "--dropped", tmp_path / "dropped.jsonl", "--no-progress"],
            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        for name in ("out.jsonl", "out.jsonl.manifest.json", "out.jsonl.card.md", "dropped.jsonl"):
            assert (tmp_path / name).stat().st_mode & 0o777 == mode, (name, umask)
    outputs = {"out.jsonl", "out.jsonl.manifest.json", "out.jsonl.card.md", "dropped.jsonl"}
    assert listing(tmp_path) == {"a.jsonl", "mix.yml"} | outputs


def caught_signals(pid: int) -> int:
    """The mask of signals the process has a handler for (SigCgt in /proc/PID/status); 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)


def stopped_while_handled(proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Wait until the console script has installed its start-up handlers (Python itself catches SIGINT, never
    SIGTERM: the SIGTERM bit is ours), then freeze it with SIGSTOP and check the handlers are still there. A
    signal sent now is handled by them whatever the machine's load; one sent before they exist is Python's
    start-up, not the product's to catch. False if the process left the handlers' block first (then retry)."""
    term = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + timeout
    while not caught_signals(proc.pid) & term:
        assert proc.poll() is None, "the command ended before it installed its start-up handlers"
        assert time.monotonic() < deadline, "the start-up handlers never appeared"
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGSTOP)
    if caught_signals(proc.pid) & term:
        return True
    os.kill(proc.pid, signal.SIGCONT)
    proc.communicate(timeout=60)
    return False


@pytest.mark.parametrize("command", ["prep", "evals"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_libraries_load_is_one_line(tmp_path, command, signum):
    """Ctrl-C (to the process group, as a shell sends it) or SIGTERM in the seconds the console scripts spend
    importing: one line and the shell's 130 or 143, as later in a run, not Python's traceback. The signal is
    sent while the process is frozen inside the handlers' block, so the test holds on a loaded machine."""
    script = [str(Path(sys.executable).parent / command), "--help"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(5):
        proc = subprocess.Popen(script, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
        if stopped_while_handled(proc):
            break
    else:
        pytest.fail("the command never stayed in its start-up handlers long enough to be signalled")
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, (proc.returncode, err)
    assert err.strip().splitlines() == [
        f"{'Interrupted' if signum == signal.SIGINT else 'Terminated'} while starting: nothing was written."
    ], err


# ---- the other commands ----


def test_decontam_report_on_what_is_not_a_manifest(tmp_path, orca):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "a.jsonl"}])
    assert build(tmp_path, config).returncode == 0
    manifest = tmp_path / "out.jsonl.manifest.json"
    refused(prep("decontam-report", manifest, cwd=tmp_path), "no decontam step")
    refused(prep("decontam-report", tmp_path / "a.jsonl", cwd=tmp_path), "a.jsonl", "not JSON")
    damaged = orjson.loads(manifest.read_bytes())
    damaged["steps"]["decontam"] = {"hits": {"mmlu": {"x": {"rows": "many"}}}}
    manifest.write_bytes(orjson.dumps(damaged))
    refused(prep("decontam-report", manifest, cwd=tmp_path), "steps.decontam is damaged")


def test_tiny_llama_on_what_is_not_sharegpt(tmp_path, orca):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca[:3]) + b"{not json\n")
    refused(prep("tiny-llama", "--text", tmp_path / "a.jsonl", "--out", tmp_path / "m", cwd=tmp_path), "a.jsonl line 1")
    assert listing(tmp_path) == {"a.jsonl"}


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "mix.yml").write_text("seed: 1\nseed: 2\n")
    res = prep("--debug", "build", "--config", tmp_path / "mix.yml", "--out", tmp_path / "o.jsonl", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" in res.stderr and "duplicate key 'seed'" in res.stderr


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB file system (a tmpfs; needs the right to mount, else the test is skipped)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", mount], check=True)


def test_full_disk_is_one_line_and_frees_everything(tmp_path, shared_data, small_disk):
    """The 1000-row sample spills 2 MB and then needs 2 MB more for the output: the disk fills mid-write."""
    source = shared_data / "openorca/openorca_gpt4_sample.jsonl"
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": str(source)}])
    cfg = yaml.safe_load(config.read_text())
    cfg["curation"] = {"steps": ["quality", "mixture"]}  # shuffled: 256 spill files open at once
    config.write_text(yaml.safe_dump(cfg))
    (small_disk / "out.jsonl").write_text("previous\n")
    (small_disk / "out.jsonl.manifest.json").write_text("{}\n")
    res = prep("build", "--config", config, "--out", small_disk / "out.jsonl", "--no-progress", cwd=tmp_path)
    refused(res, str(small_disk), "No space left on device")
    assert listing(small_disk) == {"out.jsonl", "out.jsonl.manifest.json"}
    assert (small_disk / "out.jsonl").read_text() == "previous\n"
    disk = os.statvfs(small_disk)
    assert disk.f_blocks - disk.f_bfree == 2  # the two old files' blocks: every spill block is free again


def test_a_failed_manifest_write_leaves_the_old_output_and_manifest(tmp_path):
    """A file size limit (ulimit -f) that the small output passes and its longer manifest (40 input files
    listed with their hashes) does not: neither file changes."""
    d = tmp_path / "parts"
    d.mkdir()
    for i in range(40):
        row = {"id": str(i), "system_prompt": "", "question": f"Q{i}?", "response": "Yes."}
        (d / f"{i:02}.jsonl").write_bytes(orjson.dumps(row) + b"\n")  # output: 5.5 KB, manifest: 10 KB
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": str(d)}])
    (tmp_path / "out.jsonl").write_text("previous\n")
    (tmp_path / "out.jsonl.manifest.json").write_text("{}\n")
    res = subprocess.run(
        ["sh", "-c", 'ulimit -f 8 && exec "$@"', "sh", PREP, "build", "--config", config, "--out",
         tmp_path / "out.jsonl", "--no-progress", "--workers", "0"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    refused(res, "File too large")
    assert (tmp_path / "out.jsonl").read_text() == "previous\n"
    assert (tmp_path / "out.jsonl.manifest.json").read_text() == "{}\n"
    assert listing(tmp_path) == {"parts", "mix.yml", "out.jsonl", "out.jsonl.manifest.json"} | {
        f"parts/{i:02}.jsonl" for i in range(40)
    }
