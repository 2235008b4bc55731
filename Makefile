# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Both create .venv from pyproject.toml (runtime + dev extras) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint bench lab reference clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## run the showcase (two sites, every mechanism, a quarter) into results/datacenter/<time>/
	$(VENV)/bin/dcsim run scenarios/datacenter.yaml

test: $(STAMP)  ## the default suite (fast; validation tests included)
	$(PY) -m pytest -n 2

test-all: $(STAMP)  ## also the long statistical validations
	$(PY) -m pytest -n 2 -m ''

lint: $(STAMP)
	$(PY) -m ruff check sim tests benchmarks

bench: $(STAMP)  ## throughput: the fleet at 1,000 hosts for 90 days (docs/performance.md), then the solver
	$(VENV)/bin/dcsim bench --hosts 1000 --duration 90d
	$(PY) benchmarks/bench_solver.py

lab: $(STAMP)  ## JupyterLab on notebooks/ (installs the notebook extra on first use)
	$(PY) -m pip install --quiet -e '.[dev,notebook]'
	cd notebooks && $(abspath $(VENV))/bin/jupyter lab

reference: $(STAMP)  ## regenerate docs/reference/ from the code (a test checks it is current)
	$(PY) -m sim.reference

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
