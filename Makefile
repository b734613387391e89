# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Until `reidaug demo` lands, the demo runs the stages that exist: data, check, PG2 training.
demo: $(STAMP)
	test -d $(DEMO_OUT)/data || $(VENV)/bin/reidaug data make-synthetic --out $(DEMO_OUT)/data --ids 32
	$(VENV)/bin/reidaug data check --dataset synthetic --root $(DEMO_OUT)/data
	$(VENV)/bin/reidaug train --dataset synthetic --root $(DEMO_OUT)/data --model pg2 --width 16 \
		--d-width 16 --lr 5e-4 --batch-size 8 --iters1 400 --iters2 200 --sample-every 200 \
		--out $(DEMO_OUT)/runs

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check reidaug tests benchmarks
	$(VENV)/bin/ruff format --check reidaug tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format reidaug tests benchmarks
	$(VENV)/bin/ruff check --fix reidaug tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache build *.egg-info
