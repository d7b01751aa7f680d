# Video Narrator: set-up, demo and tests.
#   make demo   install everything (Debian/Ubuntu packages and a virtual environment) and play
#               the bundled demo with narration
#   make test   install everything, with the test tools and the vision-language model
#               libraries (torch, transformers, llama.cpp, which compiles for several minutes
#               the first time; OpenVINO; the model lab; Ray), and run the whole test suite.
#               The extras go in one pip command: installed later on their own, MLflow would
#               pull a protobuf that mediapipe cannot use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# The CPU build of torch that the tests use (a range would let pip pick a large CUDA build).
TORCH ?= torch==2.13.0
# llama.cpp built for any x86-64 processor with AVX2, not tuned to this one: its AMX matrix code
# (Xeon Sapphire Rapids and newer) crashes on small Q8_0 tensors (seen with llama-cpp-python
# 0.3.36), and a build tuned to one machine may not run on another.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test setup test-setup system-packages lint clean

demo: setup
	$(VENV)/bin/narrate

test: test-setup
	$(PY) -m pytest -q

setup: system-packages $(STAMP)

test-setup: setup $(TEST_STAMP)

system-packages:
	@bash scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[piper,perception]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet '$(TORCH)'
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[test,piper,perception,gpu,llama,openvino,lab,cluster]'
	touch $(TEST_STAMP)

lint: test-setup
	$(VENV)/bin/ruff check player models tests benchmarks assets
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info
