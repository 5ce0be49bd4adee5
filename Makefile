# The two commands: `make up` runs a local region, `make test` runs every test tier.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test kube-binaries system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A local region in the background with the example app; `.venv/bin/pincompute down` stops it.
up: $(STAMP)
	$(BIN)/pincompute up --detach --example examples/hello-app.yaml

# The conformance suite runs on both backends; the real one needs the Kubernetes binaries,
# built once per machine from Go modules (tools/build-kube.sh, ~10 min the first time).
TEST_BACKENDS ?= embedded,kubernetes

test: $(STAMP) kube-binaries system-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy src/pincompute
	PINCOMPUTE_TEST_BACKENDS=$(TEST_BACKENDS) $(BIN)/python -m pytest

kube-binaries:
	@if command -v go >/dev/null 2>&1; then \
		tools/build-kube.sh >/dev/null; \
	else \
		echo "WARNING: Go is not installed: the real-Kubernetes tier will be skipped (a failure with CI=true)"; \
	fi

system-deps:
	@tools/system-deps.sh

bench: $(STAMP)
	$(BIN)/python benchmarks/store.py

clean:
	rm -rf $(VENV) .pytest_cache
