# Gnosis developer targets. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# NautilusTrader pins pandas below 3: it gets a virtualenv of its own, so the test suite's
# environment never changes
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: help setup run backtest bench test test-fast lint typecheck bench-backtrader \
	bench-dashboard bench-peers parity chromium golden mutation clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@echo "compiling the fast path's kernels once (numba caches them next to the sources)"
	$(BIN)/python -c "from gnosis.strategies.fast import warm_up_compiled; warm_up_compiled()"
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	tools/ensure-debian-package npm nodejs npm
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

chromium:        ## Debian's chromium for the browser test (apt-get when missing, as root)
	tools/ensure-debian-package chromium chromium

setup: $(STAMP) $(NODE_STAMP) chromium  ## .venv with dev and bench extras, npm packages, chromium

run: $(STAMP)    ## the main job: the bot on the simulated market, live console and dashboard
	@$(MAKE) --no-print-directory $(NODE_STAMP) || echo "warning: the dashboard's chart \
	library is not installed (npm ci failed); the chart panel says how to install it"
	$(BIN)/gnosis run --dashboard $(ARGS)

backtest: $(STAMP)  ## a 100,000-bar synthetic backtest with a summary
	$(BIN)/gnosis backtest --synthetic --bars 100000 --seed 7 $(ARGS)

bench: $(STAMP)  ## gnosis bench --json on 100,000 bars
	$(BIN)/gnosis bench --bars 100000 --json

bench-backtrader: $(STAMP)  ## the same SMA crossover in gnosis and backtrader, ratio of bars/s
	$(BIN)/python benchmarks/bench_vs_backtrader.py

$(PEERS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -e '.[bench,peers]'
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)  ## gnosis SMA + full pipeline vs backtrader and NautilusTrader, same bars
	$(PEERS_VENV)/bin/python benchmarks/bench_peers.py

parity: $(STAMP)  ## fast path vs reference path: 1,000,000 synthetic bars and real files, byte for byte
	$(BIN)/python benchmarks/fast_parity.py

test: setup      ## the whole test suite (browser test included)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## unit tests only
	$(BIN)/python -m pytest tests/unit

bench-dashboard: $(STAMP) $(NODE_STAMP)  ## per-bar latency with and without 100 WebSocket clients
	$(BIN)/python benchmarks/bench_dashboard_fanout.py

golden: $(STAMP)  ## regenerate the pinned golden numbers after an intended change (read the diff!)
	REGENERATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/acceptance/test_golden.py
	git --no-pager diff --stat tests/acceptance/golden

mutation: $(STAMP)  ## mutation testing of gnosis/trading (mutmut; slow: run it, then `mutmut results`)
	rm -rf mutants
	LIFECYCLE_EXAMPLES=25 $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut export-cicd-stats 2>/dev/null || true

lint: $(STAMP)   ## ruff
	$(BIN)/ruff check gnosis tests benchmarks

typecheck: $(STAMP)  ## mypy on the package
	$(BIN)/mypy

clean:           ## remove the virtualenv and caches
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .ruff_cache .mypy_cache node_modules test-artifacts
