# Tessera: `make run` starts the service locally on moto with the demo account,
# `make test` runs the whole test suite. Both set up .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.requirements.stamp
# Swagger UI for GET /docs (docs-deps below); here, before `run` names it.
DOCS_STAMP := docs/api/node_modules/.package-lock.json
# checkov and cfn-lint for the deploy templates' static checks (audit-venv below).
AUDIT_VENV  := build/audit-venv
AUDIT_STAMP := $(AUDIT_VENV)/.requirements.stamp
PORT   ?= 8000
SEED   ?= seeds/demo.json

.DEFAULT_GOAL := help
.PHONY: help venv run test check lint e2e fuzz bench docs browsers node-deps docs-deps peer-deps clean \
	audit-venv package deploy

help:
	@echo "make run    start Tessera on 127.0.0.1:$(PORT) with moto and the demo seed"
	@echo "            (make run PORT=18080 SEED=path/to/seed.json)"
	@echo "make test   lint, type-check and run every test (unit, storage, api, e2e)"
	@echo "make check  the fast tier, under 2 minutes: ruff, mypy and the unit, storage, api,"
	@echo "            abuse and cli tests (no e2e, fuzz, browser, deploy or packaging tests)"
	@echo "make lint   ruff and mypy only"
	@echo "make e2e    only the end-to-end tests (real local server over HTTP)"
	@echo "make fuzz   a long fuzz campaign (5,000 requests in process, 2,000 to the real runner)"
	@echo "make docs   the manual (docs/, mkdocs-material) into build/site, strict"
	@echo "make bench  the benchmark (python -m bench): tables on stdout, JSON in bench/results/,"
	@echo "            then the tessera CLI's start-up times (python -m bench.cli_startup)"
	@echo "make peer-deps  node-oidc-provider for the benchmark's peer (npm ci in bench/peer)"
	@echo "make audit-venv checkov and cfn-lint, pinned, in build/audit-venv (not the app's .venv)"
	@echo "make deploy STAGE=prod ARTIFACT_BUCKET=<bucket> PARAMS='AlarmEmail=ops@example.com ...'"
	@echo "            build the layer, package the stage and deploy it (deploy/README.md)"
	@echo "make clean  remove .venv and caches"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file changed since the last install. The
# tessera CLI (cli/) is installed editable from this checkout, as a plain path
# entry (compat mode: no import hook, so `tessera` starts fast); .venv/bin/tessera.
# So is the operator's admin command (tessera_admin, the root pyproject.toml);
# .venv/bin/tessera-admin.
$(STAMP): requirements.txt requirements-dev.txt cli/pyproject.toml pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e cli --config-settings editable_mode=compat
	$(PY) -m pip install --quiet -e . --config-settings editable_mode=compat
	@touch $@

venv: $(STAMP)

run: $(STAMP) $(DOCS_STAMP)
	$(PY) devserver.py --port $(PORT) --seed $(SEED)

# Headless Chromium for the browser tests, from Debian, when it is missing.
browsers:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update && $$sudo apt-get install -y chromium chromium-driver; \
	fi

# Node.js (from Debian, when missing) and the npm packages of the Node
# relying-party tests (tests/node: oauth4webapi, openid-client) and of the
# single-page app example (examples/spa: oidc-client-ts), exactly as locked.
NODE_STAMP := tests/node/node_modules/.package-lock.json
SPA_STAMP  := examples/spa/node_modules/.package-lock.json

define ensure_node
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update && $$sudo apt-get install -y nodejs npm; \
	fi
endef

node-deps: $(NODE_STAMP) $(SPA_STAMP)

$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	$(ensure_node)
	cd tests/node && npm ci --no-audit --no-fund
	@touch $@

$(SPA_STAMP): examples/spa/package.json examples/spa/package-lock.json
	$(ensure_node)
	cd examples/spa && npm ci --no-audit --no-fund
	@touch $@

# Swagger UI for GET /docs (docs/api: swagger-ui-dist), exactly as locked; no install
# scripts (its telemetry dependency's postinstall never runs). deploy.package copies
# the assets into the function package.
docs-deps: $(DOCS_STAMP)

$(DOCS_STAMP): docs/api/package.json docs/api/package-lock.json
	$(ensure_node)
	cd docs/api && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# The benchmark's peer (bench/peer: node-oidc-provider, python -m bench.peer), exactly as
# locked.
PEER_STAMP := bench/peer/node_modules/.package-lock.json

peer-deps: $(PEER_STAMP)

$(PEER_STAMP): bench/peer/package.json bench/peer/package-lock.json
	$(ensure_node)
	cd bench/peer && npm ci --no-audit --no-fund
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# pytest exits 5 when it collected no tests; like every non-zero status, that fails the target.
# Two workers (this machine has two cores), each test file kept on one worker so
# that a module's fixtures (a runner of its own) are started once.
test: lint browsers node-deps docs-deps peer-deps $(AUDIT_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

# The fast tier (under 2 minutes on two cores): unit, storage, API and CLI tests on
# the same two workers; not e2e, fuzz, deploy (and so no browser), the threaded abuse
# tests, the deploy packaging test (it builds function zips and runs cfn-lint) or the
# tests that wait on real sockets (the runner's limits and outbox, the SSRF listener):
# make test runs those. Fixtures hash passwords at the tests' scrypt work factor
# (tests/conftest.py), not production's.
CHECK_TESTS := tests/unit tests/storage tests/api tests/cli \
	--ignore=tests/unit/test_deploy_package.py --ignore=tests/unit/test_devserver.py \
	--ignore=tests/storage/test_local_outbox.py --ignore=tests/api/test_federation_ssrf.py

check: lint $(NODE_STAMP) $(DOCS_STAMP) $(PEER_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile $(CHECK_TESTS)

e2e: $(STAMP) $(DOCS_STAMP)
	$(PY) -m pytest -m e2e

# The fuzz suite and the schemathesis run of `make test`, with a far larger budget;
# prints the request count and the status histogram.
fuzz: $(STAMP) $(DOCS_STAMP)
	TESSERA_FUZZ_EXAMPLES=5000 TESSERA_FUZZ_LIVE_EXAMPLES=2000 TESSERA_SCHEMATHESIS_EXAMPLES=100 \
		$(PY) -m pytest -p no:xdist tests/fuzz tests/e2e/test_schemathesis.py

bench: $(STAMP) peer-deps
	$(PY) -m bench
	$(PY) -m bench.cli_startup

# The static checks of the deploy templates (tests/deploy/test_static_checks.py) run
# checkov and cfn-lint from a virtual environment of their own: their dependencies
# would clash with the app's pins in .venv.
$(AUDIT_STAMP): deploy/audit-requirements.txt
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet -r deploy/audit-requirements.txt
	@touch $@

audit-venv: $(AUDIT_STAMP)

# One stage to AWS (deploy/README.md): the dependency layer, the package, then
# python -m deploy.deploy (artifacts and template to ARTIFACT_BUCKET, a change set,
# executed). PARAMS: KEY=VALUE template parameters, space-separated.
STAGE ?= dev
ARTIFACT_BUCKET ?=
PARAMS ?=
DEPLOY_OUT := build/$(STAGE)

package: $(STAMP) $(DOCS_STAMP)
	$(PY) -m chalicelayer.build --architecture arm64 --out build/layer/layer.zip
	$(PY) -m deploy.package --stage $(STAGE) --out $(DEPLOY_OUT) --layer-zip build/layer/layer.zip

deploy: package
	@test -n "$(ARTIFACT_BUCKET)" || { echo "ARTIFACT_BUCKET=<S3 bucket> is required (deploy/README.md, step 1)"; exit 2; }
	$(PY) -m deploy.deploy --stage $(STAGE) --out $(DEPLOY_OUT) --bucket $(ARTIFACT_BUCKET) \
		$(foreach p,$(PARAMS),--parameter $(p))

# The manual: strict, so a broken link or a page missing from the nav fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build tests/node/node_modules \
		examples/spa/node_modules bench/peer/node_modules docs/api/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
