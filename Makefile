# Two entry points: `make demo` (the main job on the shipped samples) and `make test`.
# Both create .venv and install the project on first use; later runs reuse it.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
export AXOLOTL_DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export WANDB_MODE := disabled
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,semantic,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

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
	@echo "model:        demo-out/tiny-llama (base), demo-out/smoke/checkpoint-* (one per epoch), log: demo-out/train.log"
	@echo "eval reports: demo-out/smoke/eval_reports/epoch_*.json, summary.md, convergence.png"

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)
