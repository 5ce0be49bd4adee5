# The two commands: `make up` runs a local region, `make test` runs every test tier.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test kube-binaries system-deps web-assets bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A local region in the background with the example app; `.venv/bin/pincompute down` stops it.
up: $(STAMP) web-assets
	$(BIN)/pincompute up --detach --example examples/hello-app.yaml

# The conformance suite runs on both backends; the real one needs the Kubernetes binaries,
# built once per machine from Go modules (tools/build-kube.sh, ~10 min the first time).
TEST_BACKENDS ?= embedded,kubernetes

test: $(STAMP) kube-binaries system-deps web-assets
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

# The console's browser libraries (xterm.js, js-yaml; axe-core, which its tests inject), pinned by
# tools/web/package-lock.json and copied into the package, which serves them (no network at run
# time, no build step: the console itself is plain ES modules).
WEB_VENDOR := src/pincompute/web/static/vendor
WEB_MODULES := tools/web/node_modules

web-assets: $(WEB_VENDOR)/.installed

$(WEB_VENDOR)/.installed: tools/web/package-lock.json
	cd tools/web && npm ci --no-audit --no-fund --silent
	mkdir -p $(WEB_VENDOR)
	cp $(WEB_MODULES)/@xterm/xterm/lib/xterm.mjs $(WEB_MODULES)/@xterm/xterm/css/xterm.css \
		$(WEB_MODULES)/@xterm/addon-fit/lib/addon-fit.mjs \
		$(WEB_MODULES)/js-yaml/dist/js-yaml.mjs $(WEB_VENDOR)/
	touch $@

bench: $(STAMP)
	$(BIN)/python benchmarks/store.py

clean:
	rm -rf $(VENV) .pytest_cache $(WEB_VENDOR) $(WEB_MODULES)
