"""Preflight input checks: dataset rows parse as the declared type, the model is reachable (offline-safe)."""

from __future__ import annotations

import json

from test_preflight_estimate import FIXTURE_70B

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
    assert broken.status == "fail" and "line 1: not valid JSON" in broken.detail


def test_missing_local_dataset_and_offline_hub_dataset(tmp_path):
    missing, hub = check_datasets(
        [{**SHAREGPT, "path": "./data/merged.jsonl"}, {"path": "Open-Orca/OpenOrca", "type": "chat_template"}],
        tmp_path,
        rows=10,
    )
    assert missing.status == "fail" and "datasets[0].path = ./data/merged.jsonl: file not found" in missing.detail
    assert hub.status == "warn" and "not checked (HF_HUB_OFFLINE=1)" in hub.detail


def test_model_checks(tmp_path, tiny_llama):
    assert check_model(str(tiny_llama), tmp_path).status == "ok"
    config_only = check_model(str(FIXTURE_70B), tmp_path)
    assert config_only.status == "fail" and "no weight files" in config_only.detail
    assert check_model("./models/none", tmp_path).status == "fail"
    offline = check_model("meta-llama/Llama-2-70b-hf", tmp_path)  # tests run with HF_HUB_OFFLINE=1: no hang
    assert offline.status == "warn" and "not checked (HF_HUB_OFFLINE=1)" in offline.detail
