"""`prep build` on the real samples in ../shared/data: adapters, manifest arithmetic, bad rows, determinism."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, with_shared_paths

from prep.cli import main
from prep.config import MixtureConfig
from prep.errors import PrepError
from prep.pipeline import build, manifest_path
from prep.rows import Row

NO_CURATION = {"steps": []}  # these tests check the adapters exactly; tests/prep/test_curation*.py check curation


def run_build(tmp_path: Path, sources: list[dict], **kwargs) -> tuple[list[dict], dict]:
    out = tmp_path / "out.jsonl"
    config = MixtureConfig.model_validate({"seed": 1, "sources": sources, "curation": NO_CURATION})
    manifest = build(config, out, progress=False, **kwargs)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return rows, manifest


def orca_rows(shared_data: Path) -> list[dict]:
    return [orjson.loads(x) for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()]


def test_openorca_parquet(tmp_path, shared_data):
    rows, manifest = run_build(
        tmp_path,
        [{"name": "orca", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")}],
    )
    assert manifest["sources"]["orca"] == {"read": 1000, "kept": 1000, "dropped": {}}
    # the sub-source counts the data README gives for the sample's id prefixes
    assert Counter(r["subsource"] for r in rows) == {"t0": 265, "cot": 248, "niv": 244, "flan": 243}
    assert {r["teacher"] for r in rows} == {"gpt-4"}  # from the file name
    src = pq.read_table(shared_data / "openorca/openorca_gpt4_sample.parquet").to_pylist()
    first = rows[0]
    assert first["id"] == f"orca/{src[0]['id']}"
    assert first["conversations"] == [
        {"from": "system", "value": src[0]["system_prompt"]},
        {"from": "human", "value": src[0]["question"]},
        {"from": "gpt", "value": src[0]["response"]},
    ]


def test_parquet_reader_memory_does_not_grow_with_the_file(tmp_path, shared_data, monkeypatch):
    """pyarrow's default pre-buffering kept every row group read so far (1.2 GB at 2M bench rows): the
    reader's Arrow memory must stay that of one batch however long the file."""
    import pyarrow as pa

    from prep import readers

    monkeypatch.setattr(readers, "PARQUET_BATCH", 100)
    sample = pq.read_table(shared_data / "openorca/openorca_gpt4_sample.parquet")
    peaks = []
    for copies in (2, 8):
        path = tmp_path / f"orca{copies}.parquet"
        pq.write_table(pa.concat_tables([sample] * copies), path, row_group_size=100)
        start, peak, n = pa.total_allocated_bytes(), 0, 0
        for _ in readers.read_parquet(path):
            peak, n = max(peak, pa.total_allocated_bytes() - start), n + 1
        assert n == 1000 * copies
        peaks.append(peak)
    assert 0 < peaks[1] <= 1.1 * peaks[0], peaks


def test_spill_writes_each_kept_row_once_in_its_seeded_order(tmp_path, shared_data, monkeypatch):
    """Shuffled: every kept row exactly once, in the order of its seeded key (the same for the same seed,
    another for another); unshuffled: in order, across read windows shorter than some rows. `row` reads any
    row back, and closing removes the files."""
    import numpy as np

    from prep import spill as spill_module
    from prep.spill import Spill, shuffle_keys

    monkeypatch.setattr(spill_module, "WINDOW", 4096)
    monkeypatch.setattr(spill_module, "BUFFER", 8192)
    turns = (("system", "system_prompt"), ("human", "question"), ("gpt", "response"))
    rows = [
        Row(r["id"], "orca", None, None, [{"from": f, "value": r[k]} for f, k in turns]) for r in orca_rows(shared_data)
    ]
    lines = [orjson.dumps(row.to_json()) for row in rows]
    kept = np.flatnonzero(np.random.default_rng(0).random(len(lines)) < 0.7)

    def written(seed: int | None) -> list[bytes]:
        with Spill(tmp_path, shuffle_seed=seed) as spill:
            for i in range(0, len(lines), 100):
                spill.extend(lines[i : i + 100], [i % 3] * len(lines[i : i + 100]))
            assert all(spill.row(i) == rows[i] for i in range(0, len(lines), 37))
            return b"".join(piece for piece, _ in spill.lines(kept)).splitlines()

    once, again, other = written(1), written(1), written(2)
    assert sorted(once) == sorted(lines[i] for i in kept) and once == again and once != other
    assert once == [lines[i] for i in kept[np.argsort(shuffle_keys(kept, 1))]]
    assert written(None) == [lines[i] for i in kept]
    assert max(map(len, lines)) > 4096 and not list(tmp_path.glob(".prep-spill.*"))


def test_openorca_jsonl_matches_parquet_and_empty_system_means_no_system_turn(tmp_path, shared_data):
    data = orca_rows(shared_data)
    data[3]["system_prompt"] = "  "
    path = tmp_path / "orca.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in data))
    rows, _ = run_build(tmp_path, [{"name": "orca", "format": "openorca", "path": str(path), "teacher": "gpt-3.5"}])
    assert len(rows) == 1000
    assert [t["from"] for t in rows[3]["conversations"]] == ["human", "gpt"]
    assert [t["from"] for t in rows[4]["conversations"]] == ["system", "human", "gpt"]
    assert rows[0]["teacher"] == "gpt-3.5"  # explicit config wins over the file name


def test_evol_instruct_multi_turn(tmp_path, shared_data):
    path = shared_data / "evol_instruct/evol_instruct_v2_layout.json"
    src = orjson.loads(path.read_bytes())
    rows, manifest = run_build(tmp_path, [{"name": "evol", "format": "evol_instruct", "path": str(path)}])
    assert manifest["sources"]["evol"]["kept"] == 500
    assert Counter(len(r["conversations"]) for r in rows) == Counter(len(r["conversations"]) for r in src)
    assert rows[0]["id"] == f"evol/{src[0]['idx']}"
    assert rows[0]["conversations"] == src[0]["conversations"]


def test_platypus_joins_input(tmp_path, shared_data):
    path = shared_data / "platypus/open_platypus_layout.parquet"
    src = pq.read_table(path).to_pylist()
    rows, _ = run_build(tmp_path, [{"name": "platypus", "format": "platypus", "path": str(path)}])
    assert len(rows) == len(src) == 175
    with_input = next(i for i, r in enumerate(src) if r["input"].strip())
    assert (
        rows[with_input]["conversations"][0]["value"]
        == f"{src[with_input]['instruction'].strip()}\n\n{src[with_input]['input'].strip()}"
    )
    without = next(i for i, r in enumerate(src) if not r["input"].strip())
    assert rows[without]["conversations"][0]["value"] == src[without]["instruction"]
    assert {r["subsource"] for r in rows} == {"alpaca_seed_tasks"}


def test_generic_sharegpt_and_alpaca(tmp_path, shared_data):
    evol = orjson.loads((shared_data / "evol_instruct/evol_instruct_v2_layout.json").read_bytes())
    messages = tmp_path / "chat" / "messages.jsonl"  # OpenAI-style roles, in a directory
    messages.parent.mkdir()
    messages.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "messages": [
                        {"role": {"human": "user", "gpt": "assistant"}[t["from"]], "content": t["value"]}
                        for t in r["conversations"]
                    ]
                }
            )
            + b"\n"
            for r in evol[:50]
        )
    )
    rows, manifest = run_build(
        tmp_path,
        [
            {"name": "chat", "format": "sharegpt", "path": str(messages.parent)},
            {"name": "seed", "format": "alpaca", "path": str(shared_data / "platypus/*.parquet")},
        ],
    )
    assert manifest["sources"]["chat"]["kept"] == 50 and manifest["sources"]["seed"]["kept"] == 175
    assert rows[7]["conversations"] == evol[7]["conversations"] and rows[7]["id"] == "chat/7"


def corrupt_orca(tmp_path: Path, shared_data: Path) -> Path:
    data = orca_rows(shared_data)[:20]
    del data[1]["question"]
    data[2]["response"] = 42
    data[3]["response"] = "   "
    lines = [orjson.dumps(r) for r in data]
    lines[4] = lines[4][:-20]  # a truncated line
    path = tmp_path / "orca_bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_malformed_rows_counted_by_reason(tmp_path, shared_data):
    evol = orjson.loads((shared_data / "evol_instruct/evol_instruct_v2_layout.json").read_bytes())[:10]
    evol[0]["conversations"][0]["from"] = "narrator"
    evol[1]["conversations"] = []
    evol[2]["conversations"] = evol[2]["conversations"][1:]  # starts with gpt
    evol_path = tmp_path / "evol.json"
    evol_path.write_bytes(orjson.dumps(evol))
    dropped = tmp_path / "dropped.jsonl"
    rows, manifest = run_build(
        tmp_path,
        [
            {"name": "orca", "format": "openorca", "path": str(corrupt_orca(tmp_path, shared_data))},
            {"name": "evol", "format": "evol_instruct", "path": str(evol_path)},
        ],
        dropped=dropped,
    )
    assert manifest["sources"]["orca"] == {
        "read": 20,
        "kept": 16,
        "dropped": {"empty_field": 1, "invalid_json": 1, "missing_field": 1, "not_a_string": 1},
    }
    assert manifest["sources"]["evol"] == {
        "read": 10,
        "kept": 7,
        "dropped": {"empty_conversation": 1, "roles_not_alternating": 1, "unknown_role": 1},
    }
    for s in manifest["sources"].values():
        assert s["read"] == s["kept"] + sum(s["dropped"].values())
    assert manifest["totals"] == {
        "read": 30,
        "kept": 23,
        "dropped": {
            "empty_conversation": 1,
            "empty_field": 1,
            "invalid_json": 1,
            "missing_field": 1,
            "not_a_string": 1,
            "roles_not_alternating": 1,
            "unknown_role": 1,
        },
    }
    assert len(rows) == 23
    kept_dropped = [orjson.loads(x) for x in dropped.read_bytes().splitlines()]
    assert len(kept_dropped) == 7
    assert {d["where"] for d in kept_dropped if d["source"] == "orca"} == {
        f"{tmp_path / 'orca_bad.jsonl'} row {n}" for n in (2, 3, 4, 5)
    }


@pytest.mark.parametrize("row, field", [(2, "question"), (3, "response")])
def test_strict_names_file_row_and_field(tmp_path, shared_data, row, field):
    path = corrupt_orca(tmp_path, shared_data)
    if row == 3:  # make the first bad row the non-string one
        lines = path.read_bytes().splitlines()
        good = orjson.loads(lines[0])
        lines[1] = orjson.dumps(good)
        path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    with pytest.raises(PrepError, match=rf"orca_bad.jsonl row {row}, field '{field}'"):
        build(
            MixtureConfig.model_validate(
                {"sources": [{"name": "o", "format": "openorca", "path": str(path)}], "curation": NO_CURATION}
            ),
            out,
            strict=True,
            progress=False,
        )
    assert out.read_text() == "previous\n"  # atomic: the old output survives a failed run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orca_bad.jsonl", "out.jsonl"]


def write_demo_config(tmp_path: Path, shared_data: Path) -> Path:
    config = with_shared_paths(yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text()), shared_data)
    path = tmp_path / "mix.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_is_deterministic_and_manifest_hashes_output(tmp_path, shared_data):
    config = write_demo_config(tmp_path, shared_data)
    runner = CliRunner()
    outputs = []
    for name in ("a.jsonl", "b.jsonl"):
        result = runner.invoke(main, ["build", "--config", str(config), "--out", str(tmp_path / name), "--no-progress"])
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    manifest = orjson.loads(manifest_path(tmp_path / "a.jsonl").read_bytes())
    assert manifest["sha256"] == hashlib.sha256(outputs[0]).hexdigest()
    assert manifest["rows"] == len(outputs[0].splitlines()) == manifest["totals"]["kept"]
    assert manifest["seed"] == 42 and [s["name"] for s in manifest["config"]["sources"]] == [
        "openorca_gpt4",
        "evol_instruct",
        "platypus",
    ]


def test_manifest_records_version_commit_and_the_libraries_that_decide(tmp_path, shared_data):
    from importlib.metadata import version

    from prep.provenance import git_commit

    config = MixtureConfig.model_validate(yaml.safe_load(write_demo_config(tmp_path, shared_data).read_text()))
    made = build(config, tmp_path / "out.jsonl", progress=False, workers=0)["provenance"]
    assert made["version"] == version("merged-instruct")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert made["git_commit"] == (head.stdout.strip() if (REPO / ".git").exists() else None)
    assert git_commit(tmp_path) is None  # not a checkout
    libraries = made["libraries"]
    for name in ("rensa", "fasttext-predict", "numpy", "pyarrow"):
        assert libraries[name] == version(name)
    # no tokenizer, no semantic_dedup: their libraries do not decide anything here
    assert "transformers" not in libraries and "sentence-transformers" not in libraries


def test_cli_subprocess_reports_bad_config(tmp_path, shared_data):
    prep = Path(sys.executable).parent / "prep"
    config = write_demo_config(tmp_path, shared_data)
    ok = subprocess.run(
        [prep, "build", "--config", config, "--out", tmp_path / "o.jsonl", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stderr and (tmp_path / "o.jsonl.manifest.json").is_file()
    bad = tmp_path / "bad.yml"
    bad.write_text("sources:\n  - name: x\n    format: openorca\n    path: x.parquet\n    dat_files: y\n")
    res = subprocess.run(
        [prep, "build", "--config", bad, "--out", tmp_path / "o2.jsonl"], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert "bad.yml: invalid mixture config" in res.stderr and "dat_files" in res.stderr
    missing = tmp_path / "missing.yml"
    missing.write_text("sources:\n  - name: x\n    format: openorca\n    path: nowhere/x.parquet\n")
    res = subprocess.run(
        [prep, "build", "--config", missing, "--out", tmp_path / "o3.jsonl"], capture_output=True, text=True
    )
    assert res.returncode == 1 and "nowhere/x.parquet" in res.stderr


def test_worker_processes_do_not_change_the_output(tmp_path, shared_data, monkeypatch):
    """The demo curation plus malformed rows, in small batches so several are in flight in the workers: output,
    manifest and dropped rows are byte-identical with 0 and 2 worker processes."""
    import prep.pipeline

    monkeypatch.setattr(prep.pipeline, "BATCH", 64)
    config = yaml.safe_load(write_demo_config(tmp_path, shared_data).read_text())
    config["sources"].insert(
        1, {"name": "orca_bad", "format": "openorca", "path": str(corrupt_orca(tmp_path, shared_data))}
    )
    mixture = MixtureConfig.model_validate(config)
    files = {}
    for workers in (0, 2):
        out, dropped = tmp_path / f"w{workers}.jsonl", tmp_path / f"w{workers}.dropped.jsonl"
        manifest = build(mixture, out, dropped=dropped, progress=False, workers=workers)
        manifest.pop("output")
        files[workers] = (out.read_bytes(), dropped.read_bytes(), orjson.dumps(manifest))
    assert files[0] == files[2]
    assert b"missing_field" in files[0][1] and b"decontam" not in files[0][1]  # malformed rows kept in order
    manifest = orjson.loads(files[0][2])
    assert manifest["sources"]["orca_bad"]["dropped"]["missing_field"] == 1
    assert manifest["rows"] == config["curation"]["select"]["budget"]["rows"]  # the demo's select budget, filled


def test_a_forked_build_after_an_in_process_build_does_not_hang(tmp_path, shared_data):
    """Near dedup in this process (workers=0), then screening workers forked from it: rensa's thread pool must
    not be inherited half-alive (it was: the second build waited forever)."""
    import multiprocessing

    config = MixtureConfig.model_validate(
        {
            "sources": [
                {
                    "name": "orca",
                    "format": "openorca",
                    "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet"),
                }
            ],
            "curation": {"steps": ["near_dedup"]},
        }
    )

    def both() -> None:
        os.setpgrp()  # its screening workers join its group, so a hang is killed whole
        build(config, tmp_path / "a.jsonl", progress=False, workers=0)
        build(config, tmp_path / "b.jsonl", progress=False, workers=2)

    child = multiprocessing.get_context("fork").Process(target=both)  # a fresh process: this one may have used rensa
    child.start()
    child.join(90)
    hung = child.is_alive()
    if hung:
        os.killpg(child.pid, signal.SIGKILL)
        child.join()
    assert not hung, "the forked build hung"
    assert child.exitcode == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
