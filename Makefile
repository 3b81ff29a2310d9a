# `make train` and `make test` are the two commands; both create .venv and install on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch goes in first so the open range in pyproject.toml never pulls another build. Here 2.13.0
# resolves to the CPU wheel on disk; on a GPU box pass your CUDA build, e.g.
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH  ?= torch==2.13.0
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: install train test lint format assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.install-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.install-stamp

train: install
	$(BIN)/python scripts/train.py $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Fetch and convert the pinned offline assets (also done lazily by the first run).
assets: install
	$(BIN)/python -m delbind.models.rxnfp

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
