PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The versions the test suite passes with; `make lock` refreshes it. Installs outside make may leave it out: setup.cfg's
# ranges alone also install (README, "Installing").
CONSTRAINTS := constraints.txt

.PHONY: test lint format demo study calibrate curves efficiency bench clean lock

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

# Refresh constraints.txt: every dependency upgraded to the newest release setup.cfg's ranges allow, lint, mypy and the
# whole suite run on them, and only then their versions written (setuptools too, which tensorboard needs at run time;
# pip and the project itself left out; the file's comment lines kept).
lock: $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --upgrade --upgrade-strategy eager -e '.[test]'
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest
	grep '^#' $(CONSTRAINTS) > $(CONSTRAINTS).new
	$(PY) -m pip freeze --all --exclude-editable | grep -iv '^\(negmargin\|pip\)==' >> $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
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

# The embedded default sweep end to end, then its report (README, "Two commands"; about 10 minutes on 2 cores, install included)
demo: $(STAMP)
	$(VENV)/bin/negmargin sweep run
	$(VENV)/bin/negmargin sweep report --latest

# After `make demo`: the demo experiment's selected configuration at 5 margins, all else fixed (README, "Margin study")
study: $(STAMP)
	$(VENV)/bin/negmargin sweep study --latest --margins -0.5 -0.3 -0.1 0 0.2

# The embedded default's margin calibration (README, "Calibration"): 6 training seeds, 0 1 2 the tuned ones and 3 4 5
# held out (about an hour on 2 cores: its 12 runs of seeds 0 1 2 5 took 34 min, 18 runs in all): table into RESULTS.md
calibrate: $(STAMP)
	$(VENV)/bin/negmargin calibrate --margins -0.2 -0.3 --seeds 0 1 2 3 4 5 --tuned-seeds 0 1 2 \
	  --results benchmarks/RESULTS.md

# The default preset's learning-curve table (benchmarks/learning_curves/README.md; ~2 h on 2 busy cores): 8 margins x
# beta {10, 5, 20} x training seeds 3, 4, each run to its full budget; finished runs are kept and skipped
curves: $(STAMP)
	for beta in 10 5 20; do \
	  $(VENV)/bin/negmargin calibrate default --margins=-0.5,-0.4,-0.3,-0.2,-0.1,0.1,0.2 --seeds 3 4 --set scale=$$beta \
	    --out experiments/curves-default-b$$beta --curves benchmarks/learning_curves/default.csv --workers 2 --threads 1; \
	done

# Search strategies replayed on that table over 50 sweep seeds (about 3 minutes): table and figure into benchmarks/RESULTS.md
efficiency: $(STAMP)
	$(PY) benchmarks/sweep_efficiency.py --results benchmarks/RESULTS.md

bench: $(STAMP)
	$(PY) benchmarks/episode_eval.py
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/trial_throughput.py
	$(PY) benchmarks/dropblock_mask.py

clean:
	rm -rf $(VENV) build *.egg-info
