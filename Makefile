# The two commands of the README: `make demo` (set up, then run the CPU demo) and `make test`.
# Both create .venv from requirements-lock.txt on first use; re-run when the lock changes.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format bench clean-venv

setup: $(STAMP)

# --no-deps keeps triton out: with it, `import tensorflow` then `import torchvision` segfaults.
$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP)
	$(PY) launch/demo.py $(DEMO_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/check_boundaries.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest-xdist: one test file per worker process, as many workers as cores (at most 4).
test: lint
	$(PY) -m pytest -n auto --maxprocesses=4 --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/pconv.py

clean-venv:
	rm -rf $(VENV)
