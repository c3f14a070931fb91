# Two entry points: `make demo` (the main job on the shipped samples) and `make test`.
# Both create .venv and install the project on first use; later runs reuse it.
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
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/prep build --config prep/mixtures/demo.yml --out demo-out/merged.jsonl

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)
