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

.PHONY: install train test lint format assets docs docs-build gpu-bundle course-results panel-results annalog-results clean

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

# The course comparison with repeats on GSK3B (docs/results.md), drawn from committed fold runs: repeat 0 of each arm
# where its default was chosen, repeats 1-4 under results/course_repeats/runs (kept with scripts/results.py keep).
# Sweep labels (lr1e-4, contrastive_w1.0) name what are now the defaults, so rows are by recipe (--no-labels).
# Writes results/course_repeats/ (tables, answers.md, meta.json) and the report in outputs/course_repeats/.
COURSE_RUNS := results/course_repeats/runs results/course_gsk3b/runs/frozen results/defaults_finetune/runs/lr1e-4 \
	results/defaults_lp_ft/runs/default results/contrastive/runs/contrastive_w1.0 \
	results/aa_gsk3b/runs/frozen_ecfp_sel_loss/seed0 results/fp_head/runs/lp_ft_ecfp \
	results/course_gsk3b/runs/embeddings_logreg results/blend_lp_ft_ecfp_rf/runs/ecfp_rf results/course_gsk3b/runs/ecfp_xgb
# Also: does fine-tuning pay once the head reads ECFP4? frozen_ecfp against lp_ft_ecfp over their shared repeats
# (results/frozen_ecfp_vs_lp_ft_ecfp/).
FP_HEAD_RUNS := results/course_repeats/runs/frozen_ecfp results/aa_gsk3b/runs/frozen_ecfp_sel_loss/seed0 \
	results/course_repeats/runs/lp_ft_ecfp results/fp_head/runs/lp_ft_ecfp
course-results: install
	rm -rf outputs/course_repeats outputs/frozen_ecfp_vs_lp_ft_ecfp
	$(BIN)/python scripts/compare.py $(COURSE_RUNS) --reference ecfp_rf --no-labels --out outputs/course_repeats
	$(BIN)/python scripts/report.py $(COURSE_RUNS) --reference ecfp_rf --no-labels --out outputs/course_repeats
	$(BIN)/python scripts/compare.py $(FP_HEAD_RUNS) --reference lp_ft_ecfp --no-labels --out outputs/frozen_ecfp_vs_lp_ft_ecfp
	$(BIN)/python scripts/results.py collect outputs/course_repeats results/course_repeats --command "make course-results" \
		$(foreach d,$(COURSE_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py collect outputs/frozen_ecfp_vs_lp_ft_ecfp results/frozen_ecfp_vs_lp_ft_ecfp \
		--command "make course-results" $(foreach d,$(FP_HEAD_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py render

# The kinase panel with repeats (docs/results.md): the reporting targets' cheap arms, repeats 1-4 (frozen_ecfp, on its
# current checkpoint rule, 0-4) under results/panel_repeats/runs, beside repeat 0 kept in results/kinase_panel/runs.
REPORTING_TARGETS := CHEMBL2147 CHEMBL4203 CHEMBL2971   # PIM1, CLK4, JAK2: conf/experiment/kinase_panel.yaml
PANEL_ARMS  := frozen embeddings_logreg ecfp_rf ecfp_xgb contrastive lp_ft_ecfp
PANEL_RUNS  := results/panel_repeats/runs results/kinase_panel/runs/CHEMBL262 \
	$(wildcard $(foreach t,$(REPORTING_TARGETS),$(foreach a,$(PANEL_ARMS),results/kinase_panel/runs/$(t)/$(a))))
panel-results: install
	rm -rf outputs/panel_repeats
	$(BIN)/python scripts/panel.py $(PANEL_RUNS) --out outputs/panel_repeats
	$(BIN)/python scripts/results.py collect outputs/panel_repeats results/panel_repeats --command "make panel-results" \
		$(foreach d,$(PANEL_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py render

# ANNalog's encoder beside rxnfp on GSK3B's folds (docs/results.md): its rows (its frozen arms' repeat 0 in
# results/annalog_gsk3b/runs, finetune's and lp_ft's at their chosen rates, later repeats in
# results/annalog_repeats/runs) against ECFP4 + RF (results/annalog_course/), and each paired with the same recipe on
# rxnfp from the course's runs (results/annalog_twins/: does the trunk matter?).
ANNALOG_RUNS := $(foreach a,frozen frozen_ecfp embeddings_logreg,results/annalog_gsk3b/runs/$(a)) \
	results/defaults_annalog_finetune/runs/lr1e-3 results/defaults_annalog_lp_ft/runs/p1_s1e-3 \
	$(wildcard results/annalog_repeats/runs)
ECFP_RF_RUNS := results/course_repeats/runs/ecfp_rf results/blend_lp_ft_ecfp_rf/runs/ecfp_rf
# On the panel's reporting targets (results/annalog_panel/runs/<target>): against ECFP4 + RF (results/annalog_panel/)
# and against the rxnfp twins of the panel (results/annalog_panel_twins/).
ANNALOG_PANEL_RUNS := results/annalog_panel/runs
PANEL_ECFP_RF_RUNS := $(wildcard $(foreach t,$(REPORTING_TARGETS),results/kinase_panel/runs/$(t)/ecfp_rf \
	results/panel_repeats/runs/$(t)/ecfp_rf))
annalog-results: install
	rm -rf outputs/annalog_course outputs/annalog_twins outputs/annalog_panel outputs/annalog_panel_twins
	$(BIN)/python scripts/compare.py $(ANNALOG_RUNS) $(ECFP_RF_RUNS) --reference ecfp_rf --no-labels --out outputs/annalog_course
	$(BIN)/python scripts/compare.py $(ANNALOG_RUNS) $(COURSE_RUNS) --twins rxnfp_bert --no-labels --out outputs/annalog_twins
	$(BIN)/python scripts/panel.py $(ANNALOG_PANEL_RUNS) $(PANEL_ECFP_RF_RUNS) --out outputs/annalog_panel
	$(BIN)/python scripts/panel.py $(ANNALOG_PANEL_RUNS) $(PANEL_RUNS) --twins rxnfp_bert --out outputs/annalog_panel_twins
	$(BIN)/python scripts/results.py collect outputs/annalog_course results/annalog_course --command "make annalog-results" \
		$(foreach d,$(ANNALOG_RUNS) $(ECFP_RF_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py collect outputs/annalog_twins results/annalog_twins --command "make annalog-results" \
		$(foreach d,$(ANNALOG_RUNS) $(COURSE_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py collect outputs/annalog_panel results/annalog_panel --command "make annalog-results" \
		$(foreach d,$(ANNALOG_PANEL_RUNS) $(PANEL_ECFP_RF_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py collect outputs/annalog_panel_twins results/annalog_panel_twins \
		--command "make annalog-results" $(foreach d,$(ANNALOG_PANEL_RUNS) $(PANEL_RUNS),--runs $(d))
	$(BIN)/python scripts/results.py render

clean:
	rm -rf $(VENV) outputs site .pytest_cache .ruff_cache $(BUNDLE)
