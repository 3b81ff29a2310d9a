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

.PHONY: install train test lint format assets docs docs-build gpu-bundle clean

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

# The manual: docs/ + mkdocs.yml (the docs extra, installed on first use). --strict: a broken link or anchor fails.
$(VENV)/.docs-stamp: pyproject.toml | $(VENV)/.install-stamp
	$(BIN)/python -m pip install -q -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-stamp
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-build: $(VENV)/.docs-stamp
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Fetch and convert the pinned offline assets (also done lazily by the first run).
assets: install
	$(BIN)/python -m delbind.models.loading

# The offline GPU check's bundle (docs/performance.md): copy $(BUNDLE) to the GPU machine, run bash $(BUNDLE)/check.sh.
BUNDLE ?= gpu_bundle
gpu-bundle: install
	$(BIN)/python scripts/gpu_bundle.py $(BUNDLE) $(BUNDLE_ARGS)

clean:
	rm -rf $(VENV) outputs site .pytest_cache .ruff_cache $(BUNDLE)
