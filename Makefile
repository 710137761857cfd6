# The two commands a newcomer needs (see README.md). Both set the machine up first, idempotently.
.PHONY: demo test test-fast setup

# Trainer processes' CPU settings; the values and why: trainer/runtime_env.py (a test keeps them equal).
export GLIBC_TUNABLES := glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184

demo:  ## set up, then run the whole pipeline locally on the embedded default (synthetic data, tiny model)
	bash tools/setup.sh
	.venv/bin/python tools/submit.py --phase all --rank 32 --local

# Two pytest workers, one test file each at a time (a file's fixtures are built once): in one process
# the suite kept 1.2 of 2 cores busy, its tests waiting on servers and subprocesses; two keep 1.9
# busy. Each worker starts its own test servers.
PYTEST := .venv/bin/python -m pytest -n 2 --dist loadfile

test:  ## set up (incl. real test servers, cached), lint (ruff), then run the test suite
	bash tools/setup.sh --test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PYTEST)

test-fast:  ## the inner loop: lint, then the tests not marked slow (no setup: run `make test` once first)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PYTEST) -m "not slow"

setup:
	bash tools/setup.sh
