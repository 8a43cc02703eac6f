PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint format demo study calibrate bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/negmargin sweep run
	$(VENV)/bin/negmargin sweep report --latest

# After `make demo`: the demo experiment's selected configuration at 5 margins, all else fixed (README, "Margin study")
study: $(STAMP)
	$(VENV)/bin/negmargin sweep study --latest --margins -0.5 -0.3 -0.1 0 0.2

# The embedded default's margin calibration (README, "Calibration"; ~25 min on 2 cores): table into RESULTS.md
calibrate: $(STAMP)
	$(VENV)/bin/negmargin calibrate --margins -0.2 -0.3 --seeds 0 1 2 --results benchmarks/RESULTS.md

bench: $(STAMP)
	$(PY) benchmarks/episode_eval.py
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/trial_throughput.py
	$(PY) benchmarks/dropblock_mask.py

clean:
	rm -rf $(VENV) build *.egg-info
