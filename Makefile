# The two commands a user needs: `make run` and `make test`. Both create .venv if missing and
# install the project into it first, at the exact versions of constraints.txt (the install is redone
# only when pyproject.toml or constraints.txt changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.installed-run
RUN_EXTRAS := workflow,slurm,campaign
DEV_EXTRAS := dev,slurm,campaign
LOCK := constraints.txt
CORES ?= all

.PHONY: prereqs venv install install-run lock run test lint profile-tests test-slow test-cluster cluster-down bench gpu-check report clean \
	labelstudio labelstudio-install labelstudio-start labelstudio-stop browser-prereqs test-labelstudio

## System prerequisites (Python >= 3.11 with venv + ensurepip, make, git): names the one
## apt-get command that installs what is missing.
prereqs:
	@sh tools/check_prereqs.sh $(PYTHON)

## A working .venv: one whose python runs and has pip. A half-made one (e.g. `python3 -m venv`
## stopped for lack of ensurepip) is removed and made again, and the install stamp with it.
venv: prereqs
	@if ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		if [ -e $(VENV) ]; then echo "$(VENV) is broken (no working python or pip): recreating it"; fi; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	fi

# Two installs from the same lock: `make run` needs the workflow (and the SLURM and campaign
# extras a user reaches from it); `make test` adds the dev tools (pytest, linters, JAX for the
# backend tests, NudeNet for the deploy benchmark). The full install is a superset, so it marks
# the workflow one done too.
# The installer is uv (from PyPI, into the venv, pinned here): the same locked versions as pip,
# in 15 s from its cache instead of pip's 40-70 s (docs/development.md). Where uv cannot install
# (say, a package index configured only in pip.conf, which uv does not read), pip does the same
# install instead.
UV_VERSION := 0.13.9
define install_locked
	@echo "Installing alnsfw[$(1)] into $(VENV) at the versions of $(LOCK) (uv $(UV_VERSION))"
	@$(BIN)/python -m pip install --quiet --upgrade pip uv==$(UV_VERSION)
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -c $(LOCK) -e '.[$(1)]' \
		|| { echo "uv could not install '.[$(1)]': installing it with pip instead"; \
		     $(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[$(1)]'; }
endef

$(RUN_STAMP): pyproject.toml $(LOCK) | venv
	$(call install_locked,$(RUN_EXTRAS))
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml $(LOCK) | venv
	$(call install_locked,$(DEV_EXTRAS))
	@touch $(STAMP) $(RUN_STAMP)

## The workflow's packages only (what `make run` needs), and everything (`make test`).
install-run: venv $(RUN_STAMP)

install: venv $(STAMP)

## Rewrite constraints.txt from the versions installed in .venv (tools/lock.py; it refuses a venv
## outside pyproject.toml's ranges). To move to newer versions: `.venv/bin/pip install --upgrade
## -e '.[dev,slurm,campaign]'`, run `make test`, then `make lock` (docs/development.md).
lock: venv
	$(BIN)/python tools/lock.py > $(LOCK).new || { rm -f $(LOCK).new; exit 1; }
	mv $(LOCK).new $(LOCK)

## Run the default workflow (config.yaml: synthetic demo dataset) end to end.
run: install-run
	$(BIN)/snakemake --cores $(CORES)

## Whole test suite (pytest exit code 5, "no tests collected", fails like any other) and linters.
test: install
	$(BIN)/pytest
	$(MAKE) lint

lint: install
	$(BIN)/ruff check src scripts tests benchmarks tools
	$(BIN)/ruff format --check src scripts tests benchmarks tools
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

## The test suite as `make test` runs it, with each test's CPU seconds (tools/pytest_cpu.py): on
## two cores the suite is CPU-bound, so this, not --durations, says where its time goes.
profile-tests: install
	PYTHONPATH=tools $(BIN)/pytest -p pytest_cpu

## Checks too slow for CI (paper-scale): see docs/development.md.
test-slow: install
	$(BIN)/pytest -n 0 -m slow

## Real single-node SLURM: profiles/slurm, sacct, GPU requests, kill-and-resume (needs root).
test-cluster: install
	bash tests/cluster/up.sh
	$(BIN)/pytest -n 0 -m cluster tests/test_cluster_slurm.py

## Stop the test cluster (tests/cluster/up.sh brings it back in seconds).
cluster-down:
	bash tests/cluster/down.sh

## Label Studio 1.23.2 in its own venv (.labelstudio/venv, ~2.5 min, 1 GB; never in .venv), and
## a server on 127.0.0.1:$(LS_PORT) with its data in .labelstudio/data, telemetry off. start needs
## ALNSFW_LS_TOKEN (the API token to create) and ALNSFW_LS_PASSWORD (the UI login) in the
## environment; neither is written anywhere. docs/campaign.md. `make labelstudio` is both, and
## prints the URL, the login and what to do next; annotators: `bash tools/labelstudio.sh adduser EMAIL`.
LS_PORT ?= 8080
labelstudio: labelstudio-start

labelstudio-install:
	PYTHON=$(PYTHON) bash tools/labelstudio.sh install

labelstudio-start: labelstudio-install
	LS_PORT=$(LS_PORT) bash tools/labelstudio.sh start

labelstudio-stop:
	bash tools/labelstudio.sh stop

## The browser test drives Debian's chromium with Debian's chromedriver (no browser download):
## names the apt-get command when either is missing.
browser-prereqs:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's$$missing for the browser tests (as make test-cluster installs SLURM)"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null \
		  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; }; } \
		  || exit 1; \
		missing=""; \
	fi; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo "; \
		echo "The browser test (tests/test_campaign_browser.py) needs /usr/bin/chromium and" >&2; \
		echo "/usr/bin/chromedriver. Install them (Debian/Ubuntu):" >&2; \
		echo "    $${sudo}apt-get install -y$$missing" >&2; \
		echo "then run the make command again." >&2; exit 1; \
	fi

## A campaign against a real Label Studio (one server on a free port for both tests), through its
## HTTP API (tests/test_campaign_ls.py) and as a person in a headless Chromium
## (tests/test_campaign_browser.py).
test-labelstudio: install labelstudio-install browser-prereqs
	$(BIN)/pytest -n 0 -m labelstudio tests/test_campaign_ls.py tests/test_campaign_browser.py \
		tests/test_labelstudio_server.py tests/test_campaign_live.py

## Speed benchmarks (writes results/bench/*.csv and results/bench/summary.md).
bench: install
	$(BIN)/python benchmarks/run_all.py --out results/bench

## The GPU check on a GPU machine with JAX and no TensorFlow (docs/gpu.md): needs no venv;
## `benchmarks/gpu_slice.sh --prepare` first where there is network. ARGS=--dry-run: tiny, on CPU.
gpu-check:
	bash benchmarks/gpu_slice.sh $(ARGS)

## HTML report of the last run.
report: install-run
	$(BIN)/snakemake --report results/report.html

clean:
	rm -rf results resources/synthetic resources/smoke .snakemake
