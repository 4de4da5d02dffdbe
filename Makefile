# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev run test lint unit integration browser clean-venv

# Set up: a virtualenv with Cadenza and its dev tools, and the Kafka jars cached.
dev: $(VENV)/.installed
	@$(BIN)/cadenza kafka fetch

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Cadenza needs Python 3.11 or newer (PYTHON=python3.11 make ...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $@

# The main job: a local broker, the topics, the processors and a sample workflow.
run: dev
	$(BIN)/cadenza demo

lint: dev
	$(BIN)/ruff check sdk topics schemas processors tests
	$(BIN)/ruff format --check sdk topics schemas processors tests
	@# mypy cannot follow the folder->package mapping of the editable install, so it
	@# checks a tree of symlinks laid out as the installed package is.
	@rm -rf build/typecheck && mkdir -p build/typecheck/cadenza
	@ln -s $(CURDIR)/sdk/* $(CURDIR)/topics $(CURDIR)/schemas $(CURDIR)/processors build/typecheck/cadenza/
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p cadenza

# The web UI's test drives Debian's Chromium (CADENZA_TEST_CHROMIUM names another binary).
browser:
	@if [ -n "$$CADENZA_TEST_CHROMIUM" ] || command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the web UI's test"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	else echo "the web UI's test needs Chromium: install it, or set CADENZA_TEST_CHROMIUM" >&2; exit 1; fi

unit: dev
	$(BIN)/pytest tests/unit -q

integration: dev browser
	$(BIN)/pytest tests/integration -q

# Everything CI runs: lint, types, unit and integration tests on a real broker.
test: lint browser
	$(BIN)/pytest -q

clean-venv:
	rm -rf $(VENV)
