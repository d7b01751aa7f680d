# Video Narrator: set-up, demo and tests.
#   make demo   install everything (Debian/Ubuntu packages and a virtual environment) and play
#               the bundled demo with narration
#   make test   install everything and run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-packages venv lint bench clean

demo: setup
	$(VENV)/bin/narrate

test: setup
	$(PY) -m pytest -q

setup: system-packages $(STAMP)

system-packages:
	@bash scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,piper,perception]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check player models tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
