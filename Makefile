# The README's quick start: `make dry-run` (set up, then the GAN stability dry run) and `make test`.
# Set-up is a local virtual environment in .venv, made once and refreshed when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch (on CPU machines it is on local disk). GPU machines: see docs/gpu.md.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?= -q

.PHONY: setup dry-run test clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

dry-run: setup
	$(BIN)/genbench dry-run search_spaces/gan_stability.yaml

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

clean-results:
	rm -rf results
