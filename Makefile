# shoprec: `make pipeline` runs the main job, `make test` runs everything CI runs.
# Both build the environment on first use: .venv from requirements.lock (or ENV_BIN=<conda env>/bin).

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
ENV_BIN ?= .venv/bin
STAMP := $(ENV_BIN)/.shoprec-installed
PYTEST_WORKERS ?= 2
LAB_PORT ?= 8888
UI_PORT ?= 5000

.PHONY: setup bytecode pipeline test unit nbval lint extract check-extract execute-notebooks execute-notebook \
        lab ui deploy-latest status stop browser clean lock benchmark benchmark-models benchmark-scale benchmark-cli \
        test-simd-off test-demo test-fast benchmark-spark benchmark-serve benchmark-serve-scale monitor-demo benchmark-report benchmark-tests \
        benchmark-census

setup: $(STAMP)

## The project's own modules byte-compiled, as uv compiles the locked packages: every `shoprec`
## command, kernel and service imports them, and with PYTHONDONTWRITEBYTECODE set Python would
## compile them again in each process. Only files changed since are compiled (next to them, in
## __pycache__/, git-ignored); a stale file is never used (Python checks each one's mtime).
bytecode: setup
	@$(ENV_BIN)/python -m compileall -q src

$(STAMP): requirements.lock pyproject.toml
	@if [ ! -x $(ENV_BIN)/python ]; then $(PYTHON) -m venv .venv; fi
	$(ENV_BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(ENV_BIN)/python -m uv pip sync --quiet --compile-bytecode --python $(ENV_BIN)/python requirements.lock
	$(ENV_BIN)/python -m uv pip install --quiet --python $(ENV_BIN)/python --no-deps -e .
	@if [ -d .git ]; then \
	  $(ENV_BIN)/nbdime config-git --enable >/dev/null && \
	  git config diff.jupyternotebook.command "$(abspath $(ENV_BIN))/git-nbdiffdriver diff" && \
	  git config merge.jupyternotebook.driver "$(abspath $(ENV_BIN))/git-nbmergedriver merge %O %A %B %L %P" && \
	  echo "nbdime: git diff/merge drivers enabled for this repository"; fi
	@if [ -d .git ] && [ -z "$$CI" ]; then $(ENV_BIN)/pre-commit install >/dev/null && echo "pre-commit: hooks installed"; fi
	@bash .ci/install-jdk --check
	@touch $@

## The main job: run the notebooks on the embedded data, then promote the run test -> staging -> production.
pipeline: bytecode
	$(ENV_BIN)/shoprec pipeline --profile default
	$(MAKE) --no-print-directory deploy-latest

deploy-latest: setup
	$(ENV_BIN)/shoprec deploy --env test --run latest
	$(ENV_BIN)/shoprec deploy --env staging --run latest
	$(ENV_BIN)/shoprec deploy --env production --run latest --approve
	$(ENV_BIN)/shoprec status

status stop: setup
	$(ENV_BIN)/shoprec $@

## Everything CI runs: the lint, then the tests and nbval of every notebook in one pytest run
## (one queue for both workers; `make unit` and `make nbval` run either half alone).
NBVAL_OPTIONS := --nbval --nbval-current-env --nbval-sanitize-with .nbval-sanitize.cfg
## The live monitor-demo timeline (marked `demo`: minutes of real traffic) runs in `make test-demo`.
test: bytecode browser lint
	$(ENV_BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 $(NBVAL_OPTIONS) \
	  -m "not demo" tests notebooks

test-demo: setup
	$(ENV_BIN)/pytest -m demo tests

## The daily loop (about 2 min): unit tests and nbval of the notebooks, in-process only. Left to
## `make test`: whatever runs notebooks with papermill or starts kernels, services, Spark or
## PostgreSQL, drives a browser, and the fault suite.
FAST_TESTS := -m "not (demo or notebook or kernels or service or spark or postgres or browser or faults)"
test-fast: bytecode
	$(ENV_BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=10 $(NBVAL_OPTIONS) \
	  $(FAST_TESTS) --ignore notebooks/lib/spark_engine.ipynb tests notebooks

browser:
	@bash .ci/install-browser

lint: setup check-extract
	$(ENV_BIN)/ruff check .
	$(ENV_BIN)/ruff format --check .
	$(ENV_BIN)/shoprec nblint

check-extract: setup
	$(ENV_BIN)/shoprec extract --check

unit: setup
	$(ENV_BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 -m "not demo" tests

nbval: setup
	$(ENV_BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(NBVAL_OPTIONS) notebooks

## Results must not depend on the CPU: the ranking tests and nbval of the pipeline and model
## notebooks again, with numpy's optional SIMD dispatch off (every feature found beyond numpy's
## baseline), which is a different code path on any CPU. .ci/run runs it after `make test`.
SIMD_FEATURES = $(shell $(ENV_BIN)/python -c "from numpy._core._multiarray_umath import \
  __cpu_features__ as found, __cpu_dispatch__ as optional; \
  print(' '.join(name for name in optional if found.get(name)))" 2>/dev/null)
SIMD_NOTEBOOKS := notebooks/0*.ipynb notebooks/lib/ranking.ipynb notebooks/lib/recommender_base.ipynb \
  notebooks/lib/popularity.ipynb notebooks/lib/cooccurrence.ipynb notebooks/lib/ease.ipynb \
  notebooks/lib/als.ipynb notebooks/lib/metrics.ipynb

test-simd-off: bytecode
	@echo "numpy SIMD dispatch off: NPY_DISABLE_CPU_FEATURES=\"$(SIMD_FEATURES)\""
	NPY_DISABLE_CPU_FEATURES="$(SIMD_FEATURES)" SHOPREC_EXPECT_SIMD_OFF="$(SIMD_FEATURES)" \
	  $(ENV_BIN)/pytest -n $(PYTEST_WORKERS) tests/test_ranking.py tests/test_models.py tests/test_scale_paths.py
	NPY_DISABLE_CPU_FEATURES="$(SIMD_FEATURES)" $(ENV_BIN)/pytest -n $(PYTEST_WORKERS) \
	  --dist loadgroup $(NBVAL_OPTIONS) $(SIMD_NOTEBOOKS)

## Benchmarks: scripts in benchmarks/, one target each, never timed tests. Each writes
## docs/benchmarks/<name>.md and .json: the machine, the date, the load and its rows side by side.
## Every model on MovieLens-100k and the synthetic shop (quality, fit and recommend times).
benchmark: benchmark-models
benchmark-models: setup
	$(ENV_BIN)/python -m benchmarks.models

## The 10M-event shop: fit and recommend for all, fast path beside the reference path and implicit.
benchmark-scale: setup
	$(ENV_BIN)/python -m benchmarks.scale

## How long shoprec report takes beside one make pipeline (targets: 2.5x cold, 1.2x base cached).
benchmark-report: setup
	$(ENV_BIN)/python benchmarks/report_time.py

## How fast the CLI and the pre-commit hooks start (targets: --help < 1 s, status < 2 s, hooks < 10 s).
benchmark-cli: setup
	$(ENV_BIN)/python -m benchmarks.cli

## `make test` beside `make test-fast` (fast, full, fast; target: at most 5x), about 13 min on 2 cores.
benchmark-tests: setup
	$(ENV_BIN)/python -m benchmarks.tests

## Where `make test`'s CPU goes, by kind of process and by test file (about 13 min on 2 cores).
benchmark-census: setup
	$(ENV_BIN)/python -m benchmarks.census

## The 10M-event shop through both engines (local and Spark local[2]): fit, recommend for all, memory.
benchmark-spark: setup
	$(ENV_BIN)/python -m benchmarks.spark

## Serving (after `make pipeline`): production vs `mlflow models serve`, deploy under load.
benchmark-serve: setup
	@bash .ci/install-wrk
	$(ENV_BIN)/python -m benchmarks.serve

## Serving 10M-event models: deploy time, worker memory, latency over all users, deploy under load.
benchmark-serve-scale: setup
	$(ENV_BIN)/python -m benchmarks.serve_scale

## The online loop, measured: bad canaries rolled back, A/A false alarms, CTR intervals against the
## simulator's truth (in process, many seeds), and a timeline on local services: deploy, shoppers
## over HTTP, a taste shift detected, a retrain on the events deployed through the gates, CTR
## recovering (runs/monitor-demo/report.md, .json).
monitor-demo: setup
	$(ENV_BIN)/python -m shoprec.monitoring.demo

## Data-science loop.
extract: setup
	$(ENV_BIN)/shoprec extract

## Re-run notebooks in place so their committed outputs are current (smoke profile, fixed seeds,
## streams coalesced, metadata cleaned as the pre-commit hook cleans it): the same code gives the
## same files. `make execute-notebook NB=notebooks/lib/als.ipynb` runs one.
execute-notebooks: setup
	$(ENV_BIN)/shoprec execute

execute-notebook: setup
	@if [ -z "$(NB)" ]; then echo "usage: make execute-notebook NB=notebooks/lib/als.ipynb" >&2; exit 2; fi
	$(ENV_BIN)/shoprec execute $(NB)

## JupyterLab on the project root (notebooks, src, runs, README), as root too (e.g. in a container).
lab: setup
	$(ENV_BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
	  --ServerApp.root_dir=$(CURDIR) --ServerApp.default_url=/lab/tree/notebooks \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

## MLflow UI on the project's tracking store (runs, metrics, artifacts, registered models); it
## prints the link to the runs list with their headline metrics (shoprec.tracking.ui).
ui: setup
	$(ENV_BIN)/python -m shoprec.tracking.ui --port $(UI_PORT)

lock:
	$(ENV_BIN)/python -m uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 \
	  --generate-hashes --quiet -o requirements.lock

clean:
	rm -rf runs .shoprec .pytest_cache .ruff_cache
