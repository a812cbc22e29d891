# The two commands of the README: `make demo` (set up, then run the CPU demo) and `make test`.
# Both create .venv from requirements-lock.txt on first use; re-run when the lock changes.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BEAM_VENV ?= .venv-beam
BEAM_STAMP := $(BEAM_VENV)/.installed
BEAM_TESTS := tests/test_beam_build.py tests/test_beam_cache.py

.PHONY: setup demo test test-beam beam-env lint format bench browser clean-venv

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

# The web page's browser test (tests/test_web_browser.py) drives Debian's chromium with its
# chromedriver: installed here when missing (apt-get, as root or through sudo; about 80 s).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing chromium and chromium-driver for the browser test"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# pytest-xdist: one test file per worker process, as many workers as cores (at most 4). The
# browser test fails, rather than skips, without a browser.
test: lint browser
	JAXINPAINT_BROWSER_TEST=required $(PY) -m pytest -n auto --maxprocesses=4 --dist loadfile \
	  $(PYTEST_ARGS)
	$(MAKE) test-beam

# The Beam environment (docs/data.md, "Beam"): apache-beam 2.77.0 caps protobuf, pyarrow and
# pillow below the main lock's, so requirements-beam-lock.txt goes into a venv of its own, which
# then sees .venv's packages behind its own (a .pth file): one install of TensorFlow and torch.
# pip runs before the .pth is written, so it never touches .venv.
beam-env: $(BEAM_STAMP)

$(BEAM_STAMP): $(STAMP) requirements-beam-lock.txt
	rm -rf $(BEAM_VENV)
	$(PYTHON) -m venv $(BEAM_VENV)
	$(BEAM_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-beam-lock.txt
	$(BEAM_VENV)/bin/python tools/beam_env.py --behind=$(VENV)
	touch $@

# The tests that need Beam (the default environment skips them): in the Beam environment.
test-beam: $(BEAM_STAMP)
	$(BEAM_VENV)/bin/python -m pytest -p no:cacheprovider $(BEAM_TESTS)

bench: $(STAMP)
	$(PY) bench/pconv.py

clean-venv:
	rm -rf $(VENV) $(BEAM_VENV)
