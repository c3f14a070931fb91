"""Hostile but fair use of the real `prep` CLI (a subprocess, as a user runs it): bad configs, files, paths and
outputs. Each refused case exits 1 with one line naming the culprit and no traceback, and leaves no file
behind; each finished build balances (read == kept + dropped) and lists what it read."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import socket
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
        ("sources: [{name: unit, format: openorca, path: a.jsonl}]\n", ["sources[0].name", "'unit' is reserved"]),
        ("sources: [{name: a, format: openorca, path: a.jsonl, shares_files: maybe}]\n", ["sources[0].shares_files"]),
        ("sources: [{name: a, format: openorca, path: a.jsonl}]\nseed: true\n", ["seed", "True"]),
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


# ---- each input file read once: links, overlapping patterns, symlink loops, files named by two sources ----


def test_a_file_named_by_two_sources_is_refused_unless_the_config_says_so(tmp_path, orca):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca[:70]))
    (tmp_path / "link.jsonl").symlink_to("a.jsonl")
    twice = [
        {"name": "x", "format": "openorca", "path": "a.jsonl"},
        {"name": "y", "format": "openorca", "path": "a.jsonl"},
    ]
    refused(build(tmp_path, config_file(tmp_path, twice)), "'x' and 'y'", "a.jsonl", "shares_files: true")
    linked = [twice[0], {**twice[1], "path": "link.jsonl"}]
    refused(build(tmp_path, config_file(tmp_path, linked)), "'x' and 'y'", "link.jsonl, also a.jsonl")
    assert not list(tmp_path.glob("out*"))
    upsampled = [twice[0], {**twice[1], "shares_files": True}]  # on purpose: read by both
    res = build(tmp_path, config_file(tmp_path, upsampled))
    assert res.returncode == 0, res.stderr
    assert balanced(tmp_path / "out.jsonl.manifest.json")["totals"] == {"read": 140, "kept": 140, "dropped": {}}


def test_links_overlapping_patterns_and_symlink_loops_read_each_file_once(tmp_path, orca):
    """A directory holding a file and a link to it, data_files patterns that overlap, and a recursive glob
    through two symlink loops (glob walked one 40 levels deep, reading each file 40 times, and two for ever)."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.jsonl").write_bytes(jsonl(orca[:40]))
    (src / "d/b.jsonl").write_bytes(jsonl(orca[40:70]))
    (src / "link.jsonl").symlink_to("a.jsonl")
    (src / "d/up").symlink_to("..")
    (src / "d/here").symlink_to(".")
    cases = [
        ({"path": "src"}, 40, {"link.jsonl": "the same file as src/a.jsonl", "d": "a directory"}),
        ({"path": "src", "data_files": ["*.jsonl", "a*"]}, 40, {"link.jsonl": "the same file as src/a.jsonl"}),
        ({"path": "src/**/*.jsonl"}, 70, {"link.jsonl": "the same file", "up": "a symbolic link loop", "here": "loop"}),
    ]
    for spec, rows, skips in cases:
        start = time.monotonic()
        res = build(tmp_path, config_file(tmp_path, [{"name": "o", "format": "openorca", **spec}]))
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - start < 60
        manifest = balanced(tmp_path / "out.jsonl.manifest.json")
        assert manifest["totals"]["read"] == rows, spec
        skipped = {Path(s["path"]).name: s["reason"] for s in manifest["inputs"]["o"]["skipped"]}
        assert set(skipped) == set(skips), (spec, skipped)
        assert all(skipped[name].startswith(reason) or reason in skipped[name] for name, reason in skips.items())
        assert sum(manifest["inputs"]["o"]["skipped_by_reason"].values()) == len(skipped)
        assert len({r["id"] for r in map(orjson.loads, (tmp_path / "out.jsonl").read_bytes().splitlines())}) == rows


def test_fifos_sockets_and_broken_links_are_skipped_and_counted_or_named(tmp_path, orca):
    """A FIFO inside a source directory blocked the build for ever; named directly, it was "missing"."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(jsonl(orca[:10]))
    os.mkfifo(src / "pipe.jsonl")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock.jsonl"))
    (src / "gone.jsonl").symlink_to("nowhere.jsonl")
    try:
        res = build(tmp_path, config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "src"}]))
    finally:
        sock.close()
    assert res.returncode == 0, res.stderr
    audit = balanced(tmp_path / "out.jsonl.manifest.json")["inputs"]["o"]
    assert {Path(s["path"]).name: s["reason"] for s in audit["skipped"]} == {
        "pipe.jsonl": "not a regular file (a FIFO)",
        "sock.jsonl": "not a regular file (a socket)",
        "gone.jsonl": "a broken symbolic link (to nowhere.jsonl)",
    }
    assert audit["skipped_by_reason"] == {"a broken symbolic link": 1, "not a regular file": 2}
    assert "skipped src/pipe.jsonl: not a regular file (a FIFO)" in res.stderr
    for name, says in (("pipe.jsonl", "not a regular file (a FIFO)"), ("gone.jsonl", "a broken symbolic link")):
        refused(
            build(tmp_path, config_file(tmp_path, [{"name": "o", "format": "openorca", "path": f"src/{name}"}])),
            name,
            says,
        )
    os.mkfifo(tmp_path / "mix-fifo.yml")
    refused(build(tmp_path, tmp_path / "mix-fifo.yml"), "mix-fifo.yml", "FIFO")  # no writer: it would wait for ever
    piped = subprocess.run(
        [str(PREP), "build", "--config", "/dev/stdin", "--out", "piped.jsonl", "--no-progress", "--workers", "0"],
        input=(tmp_path / "mix.yml").read_text().replace("src/gone.jsonl", "src"), cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr  # a pipe the shell feeds is read


# ---- rows: ids made unique; BOMs and line ends read as `datasets` reads them; nesting bounded ----


def test_repeated_ids_are_renamed_and_counted(tmp_path, orca):
    """Two different rows with one id both reached the output with it; now the later ones become ID#2, ID#3..."""
    rows = [dict(r) for r in orca[:10]]
    rows[5]["id"] = rows[2]["id"]
    rows[7]["id"] = rows[2]["id"] + "#2"  # a source's own id that looks like a rename
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.jsonl").write_bytes(jsonl(rows))
    (tmp_path / "src/b.jsonl").write_bytes(jsonl([dict(r, question=r["question"] + "?") for r in orca[:3]]))
    zeros = [
        {"id": 0, "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]}
        for i in range(5000)
    ]
    (tmp_path / "zeros.jsonl").write_bytes(jsonl(zeros))
    sources = [
        {"name": "o", "format": "openorca", "path": "src"},
        {"name": "z", "format": "sharegpt", "path": "zeros.jsonl"},
    ]
    outputs = []
    for workers in (0, 2):
        res = prep("build", "--config", config_file(tmp_path, sources), "--out", tmp_path / f"out{workers}.jsonl",
                   "--no-progress", "--workers", workers, cwd=tmp_path)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "source 'o': 5 rows repeated an earlier row's id" in res.stderr, res.stderr
        outputs.append((tmp_path / f"out{workers}.jsonl").read_bytes())
        manifest = balanced(tmp_path / f"out{workers}.jsonl.manifest.json")
        assert manifest["renamed_ids"] == {"o": 5, "z": 4999}
    assert outputs[0] == outputs[1]  # the renames follow the input order, whatever the workers
    ids = [orjson.loads(x)["id"] for x in outputs[0].splitlines()]
    assert len(set(ids)) == len(ids) == 5013
    o = [f"o/{r['id']}" for r in rows]
    assert ids[:13] == [*o[:5], f"{o[2]}#2", o[6], f"{o[2]}#2#2", *o[8:], f"{o[0]}#2", f"{o[1]}#2", f"{o[2]}#3"]
    assert ids[13:16] == ["z/0", "z/0#2", "z/0#3"] and ids[-1] == "z/0#5000"


ENCODINGS = {
    "bom_list.json": lambda rows: b"\xef\xbb\xbf" + json.dumps(rows, indent=1).encode(),
    "bom_lines.jsonl": lambda rows: b"\xef\xbb\xbf" + jsonl(rows),
    "cr.jsonl": lambda rows: b"\r".join(orjson.dumps(r) for r in rows) + b"\r",
    "crlf_mixed.jsonl": lambda rows: (
        jsonl(rows[:3]).replace(b"\n", b"\r\n") + b"\r".join(orjson.dumps(r) for r in rows[3:])
    ),
    "crgz.jsonl.gz": lambda rows: gzip.compress(b"\r".join(orjson.dumps(r) for r in rows)),
    "list_named.jsonl": lambda rows: json.dumps(rows, indent=1).encode(),
    "zst.jsonl.zst": lambda rows: zstandard.ZstdCompressor().compress(jsonl(rows)),  # no readline: unreadable
}


def test_boms_and_line_ends_are_read_as_datasets_reads_them(tmp_path, orca):
    """Every row, as `datasets.load_dataset("json")` reads the same bytes: a BOM'd list lost every row, CR-only
    line ends made 5 records one invalid row. datasets itself refuses a list behind a BOM (pandas: "Expected
    object or value"); prep reads it, as it reads a BOM'd JSONL."""
    import datasets

    rows = orca[:5]
    sources = []
    for name, content in ENCODINGS.items():
        (tmp_path / name).write_bytes(content(rows))
        sources.append({"name": name.split(".")[0], "format": "openorca", "path": name})
        if name != "bom_list.json":
            ds = datasets.load_dataset(
                "json", data_files=str(tmp_path / name), split="train", cache_dir=str(tmp_path / "hf")
            )
            assert ds.to_list() == rows, name
    res = build(tmp_path, config_file(tmp_path, sources))
    assert res.returncode == 0, res.stderr
    manifest = balanced(tmp_path / "out.jsonl.manifest.json")
    assert {n: s for n, s in manifest["sources"].items()} == {
        s["name"]: {"read": 5, "kept": 5, "dropped": {}} for s in sources
    }
    (tmp_path / "wide.jsonl").write_bytes(jsonl(rows).decode().encode("utf-16"))
    wide = config_file(tmp_path, [{"name": "w", "format": "openorca", "path": "wide.jsonl"}], name="wide.yml")
    refused(build(tmp_path, wide), "wide.jsonl", "UTF-16")


@pytest.mark.parametrize("content", [b"[" * 200_000, b'[{"a":' * 40_000], ids=["lists", "objects"])
def test_a_deeply_nested_json_list_is_refused_in_little_memory(tmp_path, content):
    """200 KB of `[` made ijson build 10 GB of event prefixes before the depth check saw one."""
    (tmp_path / "deep.json").write_bytes(content)
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "deep.json"}])
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, PREP, "build", "--config", config, "--out", tmp_path / "out.jsonl", "--no-progress"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    peak_mb = int(measured.stdout.split()[-1])
    refused(measured, "deep.json", "nested deeper than 255 levels")
    assert peak_mb < 1500, peak_mb  # the libraries alone take ~400 MB


PEAK_RSS = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)  # MB, of the largest child
sys.exit(code)
"""


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


def test_outputs_named_like_another_builds_files_or_not_files_are_refused(tmp_path, orca):
    """`--out old.jsonl.manifest.json` replaced another build's manifest with rows; a directory where the card
    goes failed the build after OUT and its manifest were in place."""
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    config = config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "a.jsonl"}])
    assert build(tmp_path, config, out="old.jsonl").returncode == 0
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    refused(build(tmp_path, config, out="old.jsonl.manifest.json"), "--out", "a build's manifest.json")
    refused(build(tmp_path, config, "--dropped", tmp_path / "old.jsonl.card.md"), "--dropped", "card.md")
    refused(build(tmp_path, config, out="x.card.scores.png"), "--out", "card.scores.png")
    (tmp_path / "out.jsonl.card.md").mkdir()
    refused(build(tmp_path, config), "its data card", "out.jsonl.card.md", "is a directory")
    (tmp_path / "out.jsonl.card.md").rmdir()
    os.mkfifo(tmp_path / "sink")  # as /dev/null is a device: renaming over it would replace it with a file
    refused(build(tmp_path, config, "--dropped", tmp_path / "sink"), "--dropped", "not a regular file (a FIFO)")
    assert (tmp_path / "sink").is_fifo()
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_weights_with_an_empty_source_and_an_empty_output_warn(tmp_path, orca):
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca[:50]))
    (tmp_path / "b.jsonl").write_bytes(jsonl([dict(r, response="") for r in orca[:5]]))  # every row dropped
    (tmp_path / "c.jsonl").write_bytes(b"")
    sources = [
        {"name": "x", "format": "openorca", "path": "a.jsonl"},
        {"name": "y", "format": "openorca", "path": "b.jsonl"},
        {"name": "z", "format": "openorca", "path": "c.jsonl"},
    ]
    mixture = {"sources": {"x": {"weight": 2}, "y": {"weight": 1}}}
    res = build(
        tmp_path, config_file(tmp_path, sources, curation={"steps": ["quality", "mixture"], "mixture": mixture})
    )
    assert res.returncode == 0, res.stderr
    warnings = balanced(tmp_path / "out.jsonl.manifest.json")["warnings"]
    assert warnings == [
        "source 'z' read no rows; check its path and files",
        "mixture: weighted source 'y' has no rows left, so every weighted source keeps 0 rows (weights fix the "
        "shares); remove its weight or fix the source",
        "the output has 0 rows: every row read was dropped (see the drop reasons)",
        "mixture kept no row of source 'x' (50 -> 0)",  # the stage that emptied each source (manifest cuts)
        "row filters kept no row of source 'y' (5 -> 0)",
    ]
    err = " ".join(res.stderr.split())  # rich wraps long lines
    assert all(f"warning: {w}" in err for w in warnings), res.stderr
    assert "## Warnings" in (tmp_path / "out.jsonl.card.md").read_text()


def test_more_than_32767_subsources_in_a_stratified_pool(tmp_path):
    """The mixture's subsource codes were 16-bit (OverflowError), its labels the product of every field's
    values, and its strata one pass over the pool each."""
    rows = [{"instruction": f"q{i}", "output": "a", "data_source": f"s{i % 40_000}"} for i in range(40_010)]
    (tmp_path / "p.jsonl").write_bytes(jsonl(rows))
    strata = [{"sources": ["p"], "by": ["subsource", "teacher"], "max_share": 0.5}]
    config = config_file(
        tmp_path,
        [{"name": "p", "format": "platypus", "path": "p.jsonl"}],
        curation={"steps": ["mixture"], "mixture": {"strata": strata}},
    )
    res = build(tmp_path, config)
    assert res.returncode == 0, res.stderr
    manifest = balanced(tmp_path / "out.jsonl.manifest.json")
    pool = manifest["steps"]["mixture"]["strata"]["p"]
    assert pool["strata"] == 40_000 and pool["cap_per_stratum"] == 2 and len(pool["before"]) == 1000
    assert pool["before"]["s0/None"] == 2 and manifest["rows"] == 40_010


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
def manifest(tmp_path: Path, orca: list[dict]) -> Path:
    """A finished build's manifest (and its OUT beside it)."""
    (tmp_path / "a.jsonl").write_bytes(jsonl(orca))
    assert (
        build(tmp_path, config_file(tmp_path, [{"name": "o", "format": "openorca", "path": "a.jsonl"}])).returncode == 0
    )
    return tmp_path / "out.jsonl.manifest.json"


@pytest.mark.parametrize(
    "damage, culprits",
    [
        (lambda m: m.pop("rows"), ["rows: Field required"]),
        (lambda m: m.update(rows="many"), ["rows: Input should be a valid integer"]),
        (lambda m: m.update(sources=["o"]), ["sources: Input should be a valid dictionary"]),
        (lambda m: m.update(mix_shares={"o": float("nan")}), ["mix_shares.o"]),
        (lambda m: m["config"]["curation"].update(steps=None), ["config.curation.steps"]),
        (lambda m: m.update(steps={"select": {"rows_before": 5}}), ["steps.select lacks", "variety_before"]),
        (lambda m: m.update(lengths={"o": {"total": None}}), ["lengths.o"]),
        (lambda m: m["lengths"].update(unit={"rows": 1}), ["lengths holds `unit` (a string)"]),  # a source `unit`
        (lambda m: m.update(licences="mit"), ["licences"]),
    ],
)
def test_compare_on_a_damaged_manifest_is_one_line(tmp_path, manifest, damage, culprits):
    """`prep compare` gave KeyError/AttributeError tracebacks on damaged manifests."""
    data = orjson.loads(manifest.read_bytes())
    damage(data)
    (tmp_path / "bad.json").write_bytes(orjson.dumps(data))
    refused(prep("compare", manifest, tmp_path / "bad.json", cwd=tmp_path), "bad.json", "damaged", *culprits)


def test_compare_on_what_is_no_manifest_and_its_plot_outputs(tmp_path, manifest):
    (tmp_path / "list.json").write_text("[1, 2]")
    refused(prep("compare", manifest, tmp_path / "list.json", cwd=tmp_path), "list.json", "a JSON list")
    refused(prep("compare", manifest, tmp_path / "out.jsonl", cwd=tmp_path), "out.jsonl", "not JSON")
    os.mkfifo(tmp_path / "pipe.json")
    refused(prep("compare", manifest, tmp_path / "pipe.json", cwd=tmp_path), "pipe.json", "FIFO")
    (tmp_path / "a.json").write_bytes(manifest.read_bytes())
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for plot, culprits in [
        (tmp_path / "a.json", ["--plot", "is A, an input"]),
        (manifest, ["--plot", "named like a build's manifest.json"]),
        (tmp_path / "out.jsonl", ["--plot", "B's output"]),
        (tmp_path / "out.jsonl.card.md", ["--plot", "card.md"]),
        (tmp_path / "a.jsonl/cmp.png", ["a.jsonl", "Not a directory"]),
        (Path("/proc/cmp.png"), ["/proc"]),
    ]:
        refused(prep("compare", tmp_path / "a.json", manifest, "--plot", plot, cwd=tmp_path), *culprits)
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    debug = prep("--debug", "compare", manifest, tmp_path / "list.json", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "prep.errors.PrepError" in debug.stderr
    res = prep("compare", manifest, manifest, "--plot", tmp_path / "cmp.png", cwd=tmp_path)
    assert res.returncode == 0 and (tmp_path / "cmp.png").read_bytes().startswith(b"\x89PNG"), res.stderr


def test_decontam_report_and_tiny_llama_on_fifos_and_wrong_outputs(tmp_path, manifest):
    os.mkfifo(tmp_path / "pipe.json")
    refused(prep("decontam-report", tmp_path / "pipe.json", cwd=tmp_path), "pipe.json", "FIFO")
    refused(
        prep("tiny-llama", "--text", tmp_path / "pipe.json", "--out", tmp_path / "m", cwd=tmp_path), "pipe.json", "FIFO"
    )
    # the model replaces --out whole: never the directory that holds the text, nor one that holds no model
    refused(prep("tiny-llama", "--text", tmp_path / "out.jsonl", "--out", tmp_path, cwd=tmp_path), "holds --text")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/keep.txt").write_text("mine\n")
    refused(
        prep("tiny-llama", "--text", tmp_path / "out.jsonl", "--out", tmp_path / "data", cwd=tmp_path), "no config.json"
    )
    assert (tmp_path / "data/keep.txt").read_text() == "mine\n" and (tmp_path / "out.jsonl").is_file()


EVALS = Path(sys.executable).parent / "evals"


def evals(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(EVALS), *map(str, args)], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "option, value", [("--poll", "-1"), ("--poll", "0"), ("--poll", "nan"), ("--poll", "inf"), ("--lease", "nan")]
)
def test_evals_watch_refuses_intervals_that_cannot_run_at_the_option(tmp_path, option, value):
    """--poll -1 was a traceback from time.sleep, --poll 0 a busy loop."""
    (tmp_path / "eval_queue").mkdir()
    res = evals("watch", tmp_path, option, value, "--once", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"Invalid value for '{option}'" in res.stderr.splitlines()[-1], res.stderr


@pytest.mark.parametrize("value", ["big", 0, -1, "auto:0", "auto:x", True, 1.5])
def test_an_eval_batch_size_that_cannot_run_is_refused(tmp_path, value):
    """`batch_size: big` passed the eval block's validation and failed at the first eval (the plugin's block
    and an eval job share evals.spec.EvalSettings)."""
    from evals.spec import EvalSettings

    job = {"output_dir": str(tmp_path), "epoch": 1, "global_step": 1, "checkpoint": "ckpt", "model_args": {},
           "mode": "queue", "settings": {"batch_size": value}}  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job))
    refused(evals("run", tmp_path / "job.json", cwd=tmp_path), "job.json", "settings.batch_size")
    assert [EvalSettings(batch_size=v).batch_size for v in ("auto", "auto:4", 16, "8")] == ["auto", "auto:4", 16, 8]


def test_both_command_lines_share_one_error_path(tmp_path):
    """The same line (`Error: ... (--debug for the traceback)`), exit 1, and the traceback with --debug."""
    os.mkfifo(tmp_path / "job.json")
    line = refused(evals("run", tmp_path / "job.json", cwd=tmp_path), "job.json", "FIFO")  # it waited for ever
    assert line.endswith("(--debug for the traceback)")
    (tmp_path / "mix.yml").write_text("seed: 1\nseed: 2\n")
    line = refused(build(tmp_path, tmp_path / "mix.yml"), "duplicate key 'seed'")
    assert line.endswith("(--debug for the traceback)")
    debug = evals("--debug", "run", tmp_path / "job.json", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "evals.errors.EvalsError" in debug.stderr


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
