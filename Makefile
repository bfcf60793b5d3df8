# The one front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
MICROPYTHON := $(VENV)/bin/micropython

help:
	@echo "make sim    - run the firmware on the MicroPython unix port (SIM_PORT=8080, SIM_HEAP=...)"
	@echo "make test   - host tests (pytest) against the sim board, or BOARD_IP=x.x.x.x"

$(VENV)/.stamp: host_tests/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install python3 and python3-venv"; exit 1; }
	@echo "==> creating $(VENV) from host_tests/requirements.txt"
	@$(PYTHON) -m venv $(VENV) || { echo "error: could not create a venv: apt-get install python3-venv"; exit 1; }
	@$(VPY) -m pip install -q --upgrade pip
	@$(VPY) -m pip install -q -r host_tests/requirements.txt
	@touch $@

venv: $(VENV)/.stamp

.PHONY: help venv

# Job-specific targets live in mk/*.mk (build/flash, emulator, ...).
-include $(wildcard mk/*.mk)
