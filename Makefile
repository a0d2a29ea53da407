# The README's quick start: `make dry-run` (set up, then the GAN stability dry run) and `make test`.
# `make lint` (CI runs it before `make test`) checks formatting, ruff's rules and mypy; `make format` applies
# the formatting and ruff's safe fixes. Configuration: pyproject.toml; reasons: docs/lint.md.
# Set-up is a local virtual environment in .venv, made once and refreshed when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch (on CPU machines it is on local disk). GPU machines: see docs/gpu.md.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?= -q

.PHONY: setup dry-run test lint format clean-results floors

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

dry-run: setup
	$(BIN)/genbench dry-run gan_stability

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Every step runs, so one report shows all three; the target fails if any did.
lint: setup
	rc=0; \
	$(BIN)/ruff format --check . || rc=1; \
	$(BIN)/ruff check . || rc=1; \
	$(BIN)/mypy || rc=1; \
	exit $$rc

# Fixes first: a fix (an import sorted, a comprehension rewritten) can leave lines the formatter then wraps.
format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every dependency at its pyproject.toml floor (torch: the CPU pin above) in a venv of its own, every genbench module
# imported, the floors' APIs called and the wheel test's dry run and dashboards run on them. Downloads the floors
# (about 2 GB installed); not part of `make test` or CI: minutes (docs/dependency-floors.md).
FLOORS_VENV ?= .venv-floors
floors:
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOORS_VENV)/bin/python -m pip install -q $(TORCH)
	$(FLOORS_VENV)/bin/python -m pip install -q packaging
	$(FLOORS_VENV)/bin/python scripts/floors.py pins > $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/python -m pip install -q --only-binary :all: -c $(FLOORS_VENV)/floors.txt -e . \
		pytest hypothesis 'setuptools>=77.0.3'
	$(FLOORS_VENV)/bin/python scripts/floors.py check
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_dependency_floors.py tests/test_wheel.py

clean-results:
	rm -rf results
