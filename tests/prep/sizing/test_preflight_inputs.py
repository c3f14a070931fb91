"""Preflight input checks: dataset rows parse as the declared type, the model is reachable (offline-safe)."""

from __future__ import annotations

import gzip
import json

from support.sizing import FIXTURE_70B

from prep.sizing.inputs import check_datasets, check_model

SHAREGPT = {
    "path": "data.jsonl",
    "ds_type": "json",
    "type": "chat_template",
    "field_messages": "conversations",
    "message_property_mappings": {"role": "from", "content": "value"},
}


def test_real_prep_build_output_parses_as_the_recipe_declares(tmp_path, merged_jsonl):
    [check] = check_datasets([{**SHAREGPT, "path": str(merged_jsonl)}], tmp_path, rows=100)
    assert check.status == "ok", check.detail


def test_a_bad_row_is_named_by_file_and_line(tmp_path):
    good = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    bad = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "text": "hello"}]}
    (tmp_path / "data.jsonl").write_text(f"{json.dumps(good)}\n\n{json.dumps(bad)}\n")
    [check] = check_datasets([SHAREGPT], tmp_path, rows=10)
    assert check.status == "fail"
    assert f"{tmp_path / 'data.jsonl'} line 3: conversations[1] has no string 'value'" in check.detail
    (tmp_path / "data.jsonl").write_text('{"conversations": [\n')
    [broken] = check_datasets([SHAREGPT], tmp_path, rows=10)
    assert broken.status == "fail" and "data.jsonl line 1: invalid JSON" in broken.detail


def test_missing_local_dataset_and_offline_hub_dataset(tmp_path):
    missing, hub = check_datasets(
        [{**SHAREGPT, "path": "./data/merged.jsonl"}, {"path": "Open-Orca/OpenOrca", "type": "chat_template"}],
        tmp_path,
        rows=10,
    )
    assert missing.status == "fail" and "datasets[0].path: ./data/merged.jsonl: no such file" in missing.detail
    assert hub.status == "warn" and "not checked (HF_HUB_OFFLINE=1)" in hub.detail


def test_datasets_are_found_and_read_as_prep_build_reads_its_sources(tmp_path, merged_jsonl):
    """One rule with `prep build` (prep.paths, prep.readers): a directory's files, compressed JSON Lines, a hub
    name with a dot, and a directory without data files named in one line."""
    (tmp_path / "mix").mkdir()
    (tmp_path / "mix/part.jsonl.gz").write_bytes(gzip.compress(merged_jsonl.read_bytes()))
    (tmp_path / "mix/notes.md").write_text("not data\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/notes.md").write_text("not data\n")
    entries = [
        {**SHAREGPT, "path": "mix"},
        {**SHAREGPT, "path": "teknium/OpenHermes-2.5"},
        {**SHAREGPT, "path": "empty"},
    ]
    found, hub, empty = check_datasets(entries, tmp_path, rows=20)
    assert found.status == "ok" and "first 20 rows of 1 file(s)" in found.detail, found.detail
    assert hub.status == "warn" and "teknium/OpenHermes-2.5: hub dataset not checked" in hub.detail
    assert empty.status == "fail" and "datasets[2].path: empty: no .parquet/.jsonl/.json files" in empty.detail


def test_model_checks(tmp_path, tiny_llama):
    assert check_model(str(tiny_llama), tmp_path).status == "ok"
    config_only = check_model(str(FIXTURE_70B), tmp_path)
    assert config_only.status == "fail" and "no weight files" in config_only.detail
    assert check_model("./models/none", tmp_path).status == "fail"
    assert check_model("models/llama.bin", tmp_path).status == "fail"  # a file name, not a hub id
    for hub_id in ("mistralai/Mistral-7B-v0.1", "gpt2"):  # a dot in the name, a legacy name: hub ids, not paths
        offline = check_model(hub_id, tmp_path)
        assert offline.status == "warn" and "not checked (HF_HUB_OFFLINE=1)" in offline.detail, hub_id
    offline = check_model("meta-llama/Llama-2-70b-hf", tmp_path)  # tests run with HF_HUB_OFFLINE=1: no hang
    assert offline.status == "warn" and "not checked (HF_HUB_OFFLINE=1)" in offline.detail
