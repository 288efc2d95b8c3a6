# msmd-builder: two commands on a fresh Debian 12 machine.
#   make dataset                 build the default dataset from examples/
#   make dataset MUTOPIA_ROOT=.. build the real one from a Mutopia checkout
#   make test                    install what is missing and run every test, on two workers
#   make test-fast               the same without the tests marked slow or corpus
#   make mutation                mutation testing of the core modules (docs/testing.md)
#   make train-smoke             train a model for a minute on the default dataset
#   make pretrained OUT_DIR=..   train (or resume) the shipped model on the all split of a
#                                corpus dataset, --augment full, then install it into the package
#   make install-check           non-editable `pip install .` into a fresh virtualenv, then
#                                build the default dataset with it from another folder
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
MUTOPIA_ROOT ?= examples
WORK_DIR ?= work
OUT_DIR ?= dataset
WORKERS ?= 2
PYTEST_ARGS ?=
# pytest-xdist workers of `make test`; 0 runs the tests in one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
# `make mutation MUTANTS='msmd_builder.core.units.*'` runs only those mutants.
MUTANTS ?=

APT_PACKAGES := libfluidsynth3 bubblewrap fluid-soundfont-gm timgm6mb-soundfont \
	musescore-general-soundfont fluidr3mono-gm-soundfont
# Only the tests need these: headless Chromium loads the HTML viewer and report.
TEST_APT_PACKAGES := chromium
DATASET_ARGS ?=

.PHONY: setup system-packages dataset render-corpus test test-fast mutation lint clean bench \
	train-smoke install-check pretrained

setup: $(STAMPS)/venv $(STAMPS)/apt

# System packages (FluidSynth, bubblewrap for the LilyPond sandbox, the soundfonts).
# Installs only what is missing.
$(STAMPS)/apt: PACKAGES = $(APT_PACKAGES)
$(STAMPS)/apt-test: PACKAGES = $(TEST_APT_PACKAGES)
$(STAMPS)/apt $(STAMPS)/apt-test:
	@missing=""; for p in $(PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@mkdir -p $(STAMPS) && touch $@

# The virtualenv with pinned Python dependencies (with the extras the tests use);
# redone when pyproject.toml changes.
$(STAMPS)/venv: pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c "import ensurepip" 2>/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv python3-pip; fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,train,recordings]'
	@mkdir -p $(STAMPS) && touch $@

dataset: setup
	$(BIN)/msmd-build dataset $(MUTOPIA_ROOT) --work-dir $(WORK_DIR) --out $(OUT_DIR) \
		--workers $(WORKERS) $(DATASET_ARGS)

# A minute of training on the default dataset, then the evaluation (runs/smoke/).
train-smoke: dataset
	$(BIN)/msmd-build train --dataset $(OUT_DIR) --split all --model 2018 --context 42 \
		--time-budget 60 --epoch-pairs 1000 --out runs/smoke

# The model shipped in msmd_builder/train/pretrained/: the all split of OUT_DIR (a corpus
# dataset), full augmentation, the paper's schedule. Run again to continue an unfinished
# run (each part with PRETRAINED_ARGS, e.g. "--time-budget 36000 --device cuda"); the
# install step refuses runs on fewer than 100 pieces (docs/training.md).
PRETRAINED_MODEL ?= 2018
PRETRAINED_CONTEXT ?= 42
PRETRAINED_RUN ?= runs/pretrained
PRETRAINED_ARGS ?=
pretrained: setup
	if [ -f $(PRETRAINED_RUN)/run.json ]; then \
		$(BIN)/msmd-build train --resume $(PRETRAINED_RUN) $(PRETRAINED_ARGS); \
	else \
		$(BIN)/msmd-build train --dataset $(OUT_DIR) --split all --model $(PRETRAINED_MODEL) \
			--context $(PRETRAINED_CONTEXT) --augment full --out $(PRETRAINED_RUN) $(PRETRAINED_ARGS); \
	fi
	$(BIN)/python -m msmd_builder.train.pretrained $(PRETRAINED_RUN)

# Every test, on TEST_WORKERS processes, each test file on one of them (its module
# fixtures are built once).  What CI runs (.ci/run).
test: setup $(STAMPS)/apt-test
	$(BIN)/ruff check msmd_builder tests bench
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The edit-and-rerun loop: without the slow and the real-corpus tests.
test-fast: setup $(STAMPS)/apt-test
	$(BIN)/ruff check msmd_builder tests bench
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow and not corpus" $(PYTEST_ARGS)

# Mutation testing of the core modules against their fast unit tests ([tool.mutmut] in
# pyproject.toml), then the score of each module.  Not part of `make test`: a full run
# takes about half an hour on two cores.  Results are kept in mutants/, and a rerun
# tests only the functions that changed; `rm -rf mutants` starts afresh.
$(STAMPS)/mutation: $(STAMPS)/venv
	$(BIN)/pip install -q -e '.[dev,train,mutation]'
	@mkdir -p $(STAMPS) && touch $@

mutation: setup $(STAMPS)/mutation
	$(BIN)/mutmut run --max-children $(WORKERS) $(MUTANTS)
	$(BIN)/python bench/mutation_scores.py

# What a user of `pip install .` gets: the package with its hooks and soundfont list,
# no checkout around it. Builds the default dataset in a temporary folder.
INSTALL_CHECK_DIR ?= $(or $(TMPDIR),/tmp)/msmd-builder-install-check
install-check: setup
	rm -rf $(INSTALL_CHECK_DIR) && mkdir -p $(INSTALL_CHECK_DIR)
	$(PYTHON) -m venv $(INSTALL_CHECK_DIR)/venv
	$(INSTALL_CHECK_DIR)/venv/bin/pip install -q --upgrade pip
	$(INSTALL_CHECK_DIR)/venv/bin/pip install -q .
	here="$$(pwd)"; cd $(INSTALL_CHECK_DIR) && \
		venv/bin/python -c "import msmd_builder, sys; p = msmd_builder.__file__; \
			print(p); sys.exit('installed from the checkout: ' + p if p.startswith('$$here/msmd_builder') else 0)" && \
		venv/bin/msmd-build dataset "$$here/examples" --work-dir work --out out --workers $(WORKERS) && \
		venv/bin/python -c "import json, sys; s = json.load(open('out/report.json'))['summary']; \
			print(s['status_counts']); sys.exit(s['status_counts'].get('failed', 0))"
	rm -rf $(INSTALL_CHECK_DIR)

lint: setup
	$(BIN)/ruff check msmd_builder tests bench
	$(BIN)/ruff format --check msmd_builder tests bench

clean:
	rm -rf $(WORK_DIR) $(OUT_DIR) runs .pytest_cache mutants
