# The two set-up commands of the README are `make demo` and `make test`; both create the
# virtualenv and install what they need on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= examples/data

.PHONY: install demo example test test-random lint typecheck bench bench-peers bench-all clean

$(BIN)/driftline: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/pip install --quiet -e '.[test,demo]'
	touch $@

# A real MLflow tracking server for tests/test_mlflow_registry.py, in a virtualenv of its
# own: driftline talks to MLflow over its REST API and does not need the mlflow package,
# whose pins (pyarrow<26 among them) its environment need not share.
MLFLOW_VENV ?= .venv-mlflow
$(MLFLOW_VENV)/bin/mlflow:
	$(PY) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/pip install --quiet 'mlflow>=3,<4'

install: $(BIN)/driftline

# The main job on its embedded default: `driftline demo` (broker, engine, API, webhooks,
# registry; a canary aborted, a rollback approved, a drift report). DEMO_DIR keeps it all.
DEMO_DIR ?= driftline-demo
demo: install
	$(BIN)/driftline demo --dir $(DEMO_DIR)

# The example fraud data set and its baseline in $(DATA), for examples/driftline.toml and
# the README's replay and serve examples
example: install
	$(BIN)/driftline example $(DATA)
	$(BIN)/driftline baseline build $(DATA)/training.parquet -o $(DATA)/fraud.dlb \
	    --prediction score --label label --model fraud --model-version 7

test: install $(MLFLOW_VENV)/bin/mlflow
	$(BIN)/python -m pytest

# The property-based tests with fresh random examples, ten times as many: make
# test draws the same examples every run (Hypothesis' derandomize); this hunts new ones
PROPERTY_TESTS = $(shell grep -l '^from hypothesis' tests/test_*.py)
test-random: install $(MLFLOW_VENV)/bin/mlflow
	HYPOTHESIS_PROFILE=random $(BIN)/python -m pytest -q -p no:cacheprovider $(PROPERTY_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf .typecheck && $(BIN)/pip install --quiet --no-deps --no-build-isolation --target .typecheck .
	$(BIN)/mypy

# 1M × 25 replay against a plain NumPy/SciPy implementation (~5 min), then RESULTS.md
bench: install
	$(BIN)/python benchmarks/replay.py --repeat 3
	$(BIN)/python benchmarks/report.py

# Peer drift libraries for benchmarks/peers.py and benchmarks/detection.py, each in a
# virtualenv of its own: their numpy/pandas/scipy pins clash with driftline's .venv and with
# one another, and every tool runs in its own process anyway. pandas 3 breaks Evidently 0.7
# and NannyML 0.13 (removed internals); NannyML imports statsmodels without declaring it.
# Alibi Detect is BSL-licensed: it is installed here by name as a benchmark peer only, never
# as a driftline dependency (torch 2.13.0 CPU is the backend of its MMDDriftOnline).
BENCH_PEERS := evidently nannyml frouros alibi
PEER_PKGS_evidently := 'evidently==0.7.23' 'pandas>=2.2,<3'
PEER_PKGS_nannyml := 'nannyml==0.13.1' 'pandas>=2.2,<3' 'statsmodels>=0.14'
PEER_PKGS_frouros := 'frouros==0.9.0'
PEER_PKGS_alibi := 'torch==2.13.0' 'alibi-detect[torch]==0.13.0'
.venv-bench-%/.installed:
	$(PY) -m venv .venv-bench-$*
	.venv-bench-$*/bin/pip install --quiet --upgrade pip
	.venv-bench-$*/bin/pip install --quiet $(PEER_PKGS_$*)
	touch $@

bench-peers: $(foreach p,$(BENCH_PEERS),.venv-bench-$(p)/.installed)

# The peer comparison (1M x 25, every tool in its own process) and the detection-quality
# streams, then RESULTS.md with the Kafka figures already in benchmarks/results/
bench-all: install bench-peers
	$(BIN)/python benchmarks/peers.py --repeat 3
	$(BIN)/python benchmarks/detection.py
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) $(MLFLOW_VENV) .venv-bench-* build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DATA) $(DEMO_DIR)
