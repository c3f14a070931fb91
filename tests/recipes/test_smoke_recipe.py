"""The smoke recipe really trains through `axolotl train` on rows from `prep build`, saving every epoch."""

from __future__ import annotations

import json

import pytest


@pytest.mark.e2e
def test_smoke_recipe_trains_two_epochs_on_cpu(smoke_run):
    out = smoke_run.out
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) == 2
    state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
    # the Trainer's epoch counter lands just short of a whole number at the epoch-end save (1.978 here)
    assert round(state["epoch"]) == 2 and abs(state["epoch"] - 2) < 0.05
    evals = [h["eval_loss"] for h in state["log_history"] if "eval_loss" in h]
    assert len(evals) >= 2 and evals[-1] < evals[0]  # it learned something on the real rows
    assert (out / "model.safetensors").is_file()
    # the Llama-2 chat template was used and saved with the model
    assert "[INST]" in (out / "chat_template.jinja").read_text()
