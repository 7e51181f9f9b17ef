# Two entry points, each sets up what it needs in a reusable virtual environment:
#   make demo   - generate the synthetic domains, train, adapt, print the results table
#   make test   - lint, type-check the public API, run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here only for this project's machines (the wheels lie on their disk);
# the package itself asks for torch>=2.5 and torchvision>=0.20, the oldest releases with
# every API it calls (tests/test_dependency_floor.py). Override with e.g.
# TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_ARGS ?=

.PHONY: demo test test-numeric-variations lint typecheck bench clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/semparts-reid demo $(DEMO_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy src/semparts_reid

# the numeric tests again on another machine configuration: one thread, oneDNN without
# AMX/AVX-512 (issue 21: a verdict must not depend on the BLAS kernel or thread count)
NUMERIC_TESTS := tests/metrics tests/memory tests/layers tests/test_precision.py tests/test_precision_onednn.py

test: lint typecheck
	$(PY) -m pytest -q
	OMP_NUM_THREADS=1 SEMPARTS_TEST_TORCH_THREADS=1 ONEDNN_MAX_CPU_ISA=AVX2 \
		$(PY) -m pytest -q -p no:cacheprovider $(NUMERIC_TESTS)

test-numeric-variations: $(VENV)/.installed
	for v in OMP_NUM_THREADS=1 OMP_NUM_THREADS=2 SEMPARTS_TEST_TORCH_THREADS=1 ONEDNN_MAX_CPU_ISA=AVX2; do \
		echo "== $$v"; env $$v $(PY) -m pytest -q -p no:cacheprovider $(NUMERIC_TESTS) || exit 1; done

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
