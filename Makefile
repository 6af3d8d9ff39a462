# rainbond-watchdog — every target bootstraps .venv itself.
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
SCENARIO ?= cgroupv2
SUPERVISOR ?= 4
LAYOUT ?= containerd
BUNDLE_PYTHON ?= /usr/bin/python3.11
BUNDLE_ONEDIR ?= 1

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its test tools
	@echo "installed: $(BIN)/rainbond-watchdog"

test: $(STAMP) ## run the whole test suite (ARGS= passes options to pytest)
	$(BIN)/python -m pytest $(ARGS)

demo: $(STAMP) ## simulated allinone under real supervisord, ending in a diagnosis (SCENARIO=healthy|cgroupv2|conntrack|disk-full|crashloop|bind-mount|snapshotter|graphdriver) (LAYOUT=containerd|embedded|dockerd) (SUPERVISOR=3: the image's supervisor 3.3.1)
	$(BIN)/python -m tests.allinone.demo --scenario $(SCENARIO) --layout $(LAYOUT) --supervisor $(SUPERVISOR) $(ARGS)

lint: $(STAMP) ## ruff and mypy --strict on watchdog/
	$(BIN)/ruff check watchdog tests bench
	$(BIN)/mypy

bench: $(STAMP) ## benchmarks, figures printed as ratios against a baseline
	$(BIN)/python -m bench $(ARGS)

bundle: ## dist/rainbond-watchdog, one static file (and dist/rainbond-watchdog.d/, the same unpacked); own tools in build/
	BUNDLE_PYTHON=$(BUNDLE_PYTHON) BUNDLE_ONEDIR=$(BUNDLE_ONEDIR) packaging/build.sh

clean: ## remove .venv, build/, dist/ and caches
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: help install test demo lint bench bundle clean
