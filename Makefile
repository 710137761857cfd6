# The two commands a newcomer needs (see README.md). Both set the machine up first, idempotently.
.PHONY: demo test setup

demo:  ## set up, then run the whole pipeline locally on the embedded default (synthetic data, tiny model)
	bash tools/setup.sh
	.venv/bin/python tools/submit.py --phase all --rank 32 --local

test:  ## set up (incl. real test servers, cached), then run the test suite
	bash tools/setup.sh --test
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m pytest

setup:
	bash tools/setup.sh
