# maskweb: the two promises are `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed

.PHONY: run test test-py test-js lint audit bench bench-deps bench-gpu-wheels load load-rounds load-cluster setup clean

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

test: setup bench-deps
	$(MAKE) --no-print-directory test-js
	$(MAKE) --no-print-directory test-py

# The walls between the packages first (pyproject's [tool.importlinter] contracts): a second, then the tests.
test-py:
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

test-js:
	cd frontend && npm test

# Known vulnerabilities in the installed Python packages and the frontend's (needs the advisory services).
audit: $(STAMP)
	$(VENV)/bin/pip-audit --progress-spinner off
	cd frontend && npm audit

lint: $(STAMP)
	$(VENV)/bin/ruff check backend tests
	$(VENV)/bin/ruff format --check backend tests
	$(VENV)/bin/lint-imports

# The bench's peers (pyproject's `bench` extra; never installed by `setup`, never imported by the service):
# torch's CPU-only build, which pip finds on PyTorch's CPU wheel index or in a local wheel folder
# (PIP_FIND_LINKS / --extra-index-url; PyPI's default build would pull several GB of CUDA packages), torchvision
# and tf-keras, all three without their declared dependencies (torchvision's would pull the CUDA build of torch;
# inference needs none of torch's others), and scikit-image with its own. matterport's code comes as the
# mrcnn-colab 2.1 wheel, downloaded into .cache/bench and read by the bench (nothing of it is installed).
BENCH_CACHE := .cache/bench
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_PINS  = $(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench']))"

# An unreachable wheel index (a machine that reaches only a PyPI mirror) is left out after one 5 s probe:
# pip would retry it five times per package, half a minute in all, before using the mirror anyway.
$(BENCH_STAMP): pyproject.toml $(STAMP)
	@index="$(TORCH_CPU_INDEX)"; \
	$(PY) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$$index/" >/dev/null 2>&1 \
		|| { echo "bench-deps: $$index does not answer; using the configured indexes only"; index=; }; \
	$(PY) -m pip install -q --no-deps $${index:+--extra-index-url $$index} $$($(BENCH_PINS) | grep -v '^scikit-image')
	$(PY) -m pip install -q $$($(BENCH_PINS) | grep '^scikit-image')
	$(PY) -m pip download -q --no-deps -d $(BENCH_CACHE) mrcnn-colab==2.1
	touch $@

bench-deps: $(BENCH_STAMP)

# Batch sizes and rounds: `make bench BENCH_BATCHES="1 2 4 8 16"` for the whole table (as memory allows).
# With no weights file the models run on generated weights (same layout, same speed); the output says which.
BENCH_BATCHES ?= 1 2
BENCH_REPEAT  ?= 5
bench: $(BENCH_STAMP)
	@weights=""; [ -f "$$($(VENV)/bin/maskweb weights path 2>/dev/null | head -1)" ] || weights=--random-weights; \
	$(VENV)/bin/maskweb bench $$weights --batch $(BENCH_BATCHES) --repeat $(BENCH_REPEAT) --json $(BENCH_CACHE)/bench.json

# scripts/bench-gpu.sh runs on an H100/H200 host that has PyTorch, torchvision, JAX (CUDA), numpy, h5py and
# Pillow for Python 3.12 but no network: these are the wheels it lacks, carried in .whl/.
bench-gpu-wheels: $(STAMP)
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
		keras==3.15.1 namex==0.1.0 optree==0.20.0 pycocotools==2.0.11

# Jobs per second and event latency through nginx, one web + one worker against two + two (README "Scaling
# out"); needs nginx and PostgreSQL on 127.0.0.1:5432, starts everything else itself.
load-cluster: $(STAMP)
	$(VENV)/bin/python tests/load/cluster_run.py

# Dispatcher rounds after jobs with 10,000 waiting: simulated GPU-paced workers, rounds in the job's thread vs.
# on the worker's maintenance thread (README "Capacity").
load-rounds: $(STAMP)
	$(PY) tests/load/worker_rounds.py

# Many users against a real stack on this machine (small model config, generated weights): the capacity figures
# in README. Several minutes; the CI-sized run is tests/load/test_load.py.
load: $(STAMP)
	$(PY) tests/load/run.py --out test-artifacts/load-full.json

clean:
	rm -rf $(VENV) frontend/node_modules .pytest_cache .ruff_cache
