# The two commands: `make run` (the system) and `make test` (the suite).
# Both create .venv and install requirements-dev.txt (runtime + tools) when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Development secret for signing tokens: made once per checkout, never committed.
SECRET_FILE := .dev-secret
# Installing Debian's packages (chromium, docker-compose) needs root: through sudo for anyone else.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export JWT_SECRET ?= $(shell cat $(SECRET_FILE) 2>/dev/null)
export DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/crm
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
# Every target here is a development tool: development settings (guest, the sandbox, the dev login) are allowed.
# A process started any other way runs in production (the default) and refuses them (README, "Running it in production").
export APP_ENV ?= development
GATEWAY_PORT ?= 8080
# For `make run` only (the tests wire their own): where the Twilio sandbox (or Twilio) calls the gateway back.
run: export GATEWAY_PORT := $(GATEWAY_PORT)
run: export PUBLIC_URL ?= http://127.0.0.1:$(GATEWAY_PORT)
run: export SANDBOX_INBOUND_URL ?= $(PUBLIC_URL)/webhooks/twilio/inbound
# Tokens name their issuer and audience, and the gateway of `make run` checks both (`make token` sets them too).
run token: export JWT_ISSUER ?= crm-dev
run token: export JWT_AUDIENCE ?= crm
ORG ?= demo
USER ?= agent

.PHONY: run test bench chaos fuzz screenshots token parked asyncapi client venv clean browser compose node js fresh-machine-check cluster cluster-tools

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(SECRET_FILE):
	@$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))' > $@
	@chmod 600 $@

run: $(STAMP) $(SECRET_FILE)
	@bash deploy/start-local-services.sh
	@JWT_SECRET=$${JWT_SECRET:-$$(cat $(SECRET_FILE))} $(PY) -m shared.tools.preflight
	@$(PY) -m services.leads.demo --org $(ORG)
	@echo "Gateway:  http://127.0.0.1:$(GATEWAY_PORT)/   (console; API under /api, websocket at /ws)"
	@echo "Token for user $(USER) of organisation $(ORG):"
	@JWT_SECRET=$${JWT_SECRET:-$$(cat $(SECRET_FILE))} $(PY) -m services.gateway.token --org $(ORG) --user $(USER) | tail -1
	@echo "Ctrl-C stops everything."
	@JWT_SECRET=$${JWT_SECRET:-$$(cat $(SECRET_FILE))} BOOKINGS_DEMO_ORG=$(ORG) DEV_LOGIN=true DEV_LOGIN_ORG=$(ORG) DEV_LOGIN_USER=$(USER) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
		exec $(PY) -m shared.tools.supervise Procfile

# The browser tests need Chromium: Debian's package, installed when missing (never a downloaded build); and
# libatomic1, which the Playwright package's own Node.js driver is linked against (a minimal Debian lacks it).
browser:
	@command -v chromium >/dev/null && { ! command -v dpkg >/dev/null || dpkg -s libatomic1 >/dev/null 2>&1; } || \
		{ echo "installing Debian's chromium and libatomic1 for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libatomic1 >/dev/null; }

# The JavaScript SDK (clients/js) needs Node.js 18 or newer (CI has 20) and npm: Debian's packages, installed when missing.
node:
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "installing Debian's nodejs and npm for the JavaScript SDK"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' || \
		{ echo "the JavaScript SDK needs Node.js 18 or newer (node --version: $$(node --version))"; exit 1; }

# Its packages, from the npm registry, exactly as the lock file says (again when the lock file changes).
JS := clients/js
JS_STAMP := $(JS)/node_modules/.installed
js: $(JS_STAMP)
$(JS_STAMP): $(JS)/package.json $(JS)/package-lock.json | node
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The compose file's tests (tests/unit/test_compose.py) need a real Compose: Debian's docker-compose (1.29; it reads
# and checks the file without a Docker engine), installed when missing.
compose:
	@command -v docker-compose >/dev/null || { echo "installing Debian's docker-compose for the compose file's tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

# A three-node RabbitMQ cluster on this machine (tests/support/cluster.py: network namespaces, HAProxy in front),
# for the cluster tests, `make chaos CLUSTER=3` and `make cluster`: Debian's haproxy, iptables and iproute2, installed
# when missing. As root each node has a network namespace; elsewhere they share the loopback on ports of their own.
cluster-tools:
	@if ! { command -v haproxy && command -v iptables && command -v ip; } >/dev/null && command -v apt-get >/dev/null \
		&& { [ "$$(id -u)" = 0 ] || command -v sudo >/dev/null; }; then \
		echo "installing Debian's haproxy, iptables and iproute2 for the RabbitMQ cluster"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy iptables iproute2 >/dev/null; \
	fi

# Three RabbitMQ nodes clustered behind HAProxy until Ctrl-C (then nothing of them is left): it prints the AMQP_URL
# to run the system on them (AMQP_URL=... make run). CLUSTER_PORT: HAProxy's port (5673).
cluster: $(STAMP) cluster-tools
	$(PY) -m tests.support.cluster

# Lint, format and types first (settings in pyproject.toml), then the suite.
LINTED := shared services tests bench chaos clients/python
TYPED := shared services clients/python bench chaos tests/support
test: $(STAMP) browser compose cluster-tools $(JS_STAMP)
	$(PY) -m ruff check --quiet $(LINTED)
	$(PY) -m ruff format --check --quiet $(LINTED)
	$(PY) -m mypy $(TYPED)
	cd $(JS) && npx tsc -p tsconfig.json && npm run --silent example && node --test --test-reporter=dot test/*.test.js
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP) $(if $(findstring --cluster,$(BENCH_ARGS)),cluster-tools)
	$(PY) -m bench $(BENCH_ARGS)

# The fault suite: every button pressed while processes, the broker, the database and the SMS provider fail
# (CHAOS_SECONDS, 180 by default; CHAOS_ARGS="--seconds 60 --no-db-restart ..."); the table in var/chaos-report.txt.
# CLUSTER=3: on a three-node RabbitMQ cluster, with node kills, a partition and a rolling restart besides.
chaos: $(STAMP) $(if $(CLUSTER),cluster-tools)
	$(PY) -m chaos $(if $(CLUSTER),--cluster $(CLUSTER)) $(CHAOS_ARGS)

# The README's screenshots (docs/*.png), taken by the browser tests; a plain `make test` leaves them as they are.
screenshots: $(STAMP) browser
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser -q -k "screenshot or layout"

# The long fuzzing run (the suite runs a bounded one): schemathesis against the gateway's OpenAPI document.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_SECONDS=$${FUZZ_SECONDS:-900} $(PY) -m pytest tests/e2e/test_fuzz.py -q

# A fresh Debian (debootstrap minbase + python3, python3-venv, make, ca-certificates) in namespaces of its own:
# make run until a press through the gateway is answered, Ctrl-C, make test: proves that make run installs
# PostgreSQL and RabbitMQ itself. As root on Debian/Ubuntu; ~10 min; var/fresh-machine-check.txt.
# FRESH_ARGS: --keep --untracked --rebuild-base --patch=FILE
fresh-machine-check:
	bash deploy/fresh-machine-check.sh $(FRESH_ARGS)

token: $(STAMP) $(SECRET_FILE)
	@JWT_SECRET=$${JWT_SECRET:-$$(cat $(SECRET_FILE))} $(PY) -m services.gateway.token --org $(ORG) --user $(USER)

# make parked CMD=list|replay|purge SERVICE=leads
parked: $(STAMP)
	$(PY) -m shared.tools.parked $(CMD) --service $(SERVICE)

asyncapi: $(STAMP)
	for service in leads bookings sms proposals documents; do PYTHONHASHSEED=0 $(PY) -m shared.tools.asyncapi $$service > docs/asyncapi/$$service.json; done

# The Python client's buttons, reads and `crm` subcommands, and the JavaScript SDK's table, refusals and types,
# from the one table (shared/buttons.py).
client: $(STAMP)
	$(PY) -m shared.tools.clientgen
	$(PY) -m shared.tools.jsgen

clean:
	rm -rf $(VENV) .pytest_cache
