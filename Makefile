# Two commands matter: `make demo` and `make test`. Both set themselves up:
# a virtualenv under the repo with the package installed from pyproject.toml,
# and the eBPF memory tracer built when clang and bpftool are present
# (optional: without them Maxwell falls back and `maxwell doctor` says why).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BPF_DIR := src/maxwell/memtrace/bpf

.PHONY: demo test lint typecheck unit bpf setup clean

setup: $(STAMP) bpf

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Maxwell needs Python 3.11 or newer")'
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install it with 'sudo apt-get install python3-venv'"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

bpf:
	@if [ -f $(BPF_DIR)/Makefile ]; then $(MAKE) --no-print-directory -C $(BPF_DIR) || echo "note: eBPF tracer not built; Maxwell will use the RSS-sampling fallback (see 'maxwell doctor')"; fi

demo: setup
	$(VENV)/bin/maxwell demo $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck unit

clean:
	rm -rf $(VENV) build runs .pytest_cache .mypy_cache .ruff_cache
	@if [ -f $(BPF_DIR)/Makefile ]; then $(MAKE) --no-print-directory -C $(BPF_DIR) clean; fi
