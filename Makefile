# The two set-up commands of the README are `make demo` and `make test`; both create the
# virtualenv and install what they need on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= examples/data

.PHONY: install demo example test lint typecheck bench clean

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf .typecheck && $(BIN)/pip install --quiet --no-deps --no-build-isolation --target .typecheck .
	$(BIN)/mypy

# 1M × 25 replay against a plain NumPy/SciPy implementation (~5 min), then RESULTS.md
bench: install
	$(BIN)/python benchmarks/replay.py --repeat 3
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) $(MLFLOW_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DATA) $(DEMO_DIR)
