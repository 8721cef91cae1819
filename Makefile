# maskweb: the two promises are `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed

.PHONY: run test test-py test-js lint bench setup clean

setup: $(STAMP) $(NPM_STAMP)

# Re-install only when the pins change: a second `make run` starts at once.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,jax]'
	touch $@

$(NPM_STAMP): frontend/package.json
	cd frontend && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@

run: setup
	$(VENV)/bin/maskweb run

test: setup
	$(MAKE) --no-print-directory test-js
	$(MAKE) --no-print-directory test-py

test-py:
	$(VENV)/bin/pytest

test-js:
	cd frontend && npm test

lint: $(STAMP)
	$(VENV)/bin/ruff check backend tests
	$(VENV)/bin/ruff format --check backend tests

# With no weights file the model runs on generated weights (same layout, same speed); the output says which.
bench: $(STAMP)
	@if [ -f "$$($(VENV)/bin/maskweb weights path 2>/dev/null | head -1)" ]; then \
		$(VENV)/bin/maskweb bench --calibrate; \
	else \
		$(VENV)/bin/maskweb bench --calibrate --random-weights; \
	fi

clean:
	rm -rf $(VENV) frontend/node_modules .pytest_cache .ruff_cache
