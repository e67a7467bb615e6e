# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.weakloc-installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# plain pip: on the project machines it resolves torch/torchvision from local files (see README)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the main job on the built-in benchmark
	$(VENV)/bin/weakloc demo

test: $(STAMP)  ## the test suite (what .ci/run calls)
	$(PY) -m pytest -q

bench: $(STAMP)  ## speed benchmarks (results in benchmarks/results/)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs data .pytest_cache
