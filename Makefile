# wsgistack — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COMPOSE := docker compose
PYTEST_ARGS ?=

# Your own app: APP_DIR=/path/to/project (here or in .env) builds the app image
# from that folder with app/project.Dockerfile, FROM the runtime image, and
# bakes its STATIC_DIR into the proxy image. No file of this template changes.
APP_DIR ?= $(shell sed -n 's/^APP_DIR=//p' .env 2>/dev/null)
ifneq ($(strip $(APP_DIR)),)
override APP_DIR := $(abspath $(APP_DIR))
export APP_DIR
export APP_DOCKERFILE := $(CURDIR)/app/project.Dockerfile
export STATIC_SOURCE := app
endif

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# -- set-up (each step skips what is already there) ------------------------------
# The server (server/, the wsgistack distribution) is installed editable in
# both venvs: tests and the benchmark run the working tree's code.
# Its hot path is compiled in place (server/setup.py: Cython, a C compiler and
# Python.h, requirements/host-packages.txt) whenever its sources change, so the
# tests never run a stale extension; without a compiler it stays pure Python.
$(VENV)/.installed: requirements/dev.txt requirements/app.txt requirements/constraints.txt server/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/dev.txt
	WSGISTACK_NO_EXTENSIONS=1 $(PY) -m pip install --quiet --no-deps -e ./server
	touch $@

HOT_SOURCES := $(wildcard server/src/wsgistack/http/*.py server/src/wsgistack/http/*.pxd) \
	server/src/wsgistack/wsgi.py server/setup.py
$(VENV)/.hotpath: $(VENV)/.installed requirements/build.txt $(HOT_SOURCES)
	$(PY) -m pip install --quiet -r requirements/build.txt
	cd server && ../$(PY) setup.py --quiet build_ext --inplace
	touch $@

.PHONY: venv
venv: $(VENV)/.hotpath ## create .venv with the pinned test tools (the server's hot path compiled)

.PHONY: bootstrap host-packages
bootstrap: ## make Docker, compose v2 and the base image available (what running needs)
	bash scripts/bootstrap.sh
host-packages: ## the host tools the tests use (requirements/host-packages.txt; installs them as root)
	bash scripts/bootstrap.sh host-packages

.env:
	cp .env.example .env

# The development certificate's names (scripts/gen-cert.sh), as compose reads them.
SERVER_NAME ?= $(shell sed -n 's/^SERVER_NAME=//p' .env 2>/dev/null | tr -d "\"'")

# ACME (docs/tls-certificates.md): with DOMAIN set, here or in .env, every
# compose command also runs the certbot service (profile `acme`), besides the
# profiles COMPOSE_PROFILES names.
DOMAIN ?= $(shell sed -n 's/^DOMAIN=//p' .env 2>/dev/null | tr -d "\"'")
COMPOSE_PROFILES ?= $(shell sed -n 's/^COMPOSE_PROFILES=//p' .env 2>/dev/null | tr -d "\"'")
comma := ,
ifneq ($(strip $(DOMAIN)),)
override export COMPOSE_PROFILES := $(if $(strip $(COMPOSE_PROFILES)),$(strip $(COMPOSE_PROFILES))$(comma))acme
endif

.PHONY: prepare
prepare: bootstrap .env ## bootstrap, .env, TLS certificate and wheelhouse
	python3 scripts/check-env.py .env
	SERVER_NAME="$(SERVER_NAME)" bash scripts/gen-cert.sh
	bash scripts/wheels.sh

# -- the stack -------------------------------------------------------------------
# In order: the runtime (and wheelhouse) images a project builds FROM, the
# app image the proxy takes its static files from, then the rest.
.PHONY: build
build: prepare ## build every image (APP_DIR=/path/to/project: your app's)
	$(COMPOSE) --profile build build $(BUILD_FLAGS) runtime wheels
	$(COMPOSE) build $(BUILD_FLAGS) app
	$(COMPOSE) build $(BUILD_FLAGS)

# Debian's security updates reach the images only through a fresh base image
# and a build that reuses no cached layer (docs/operations.md).
.PHONY: rebuild
rebuild: ## refresh the base image (pull, else debootstrap) and rebuild every image without cache
	bash scripts/bootstrap.sh refresh-base
	$(MAKE) build BUILD_FLAGS=--no-cache

# Before anything starts, .env is checked by the built images' own checks and
# on this host (scripts/preflight.py); a service that still ends unhealthy
# has its last log lines printed (scripts/compose-up.sh).
.PHONY: up
up: build ## build and start the stack; returns when every service is healthy
	python3 scripts/preflight.py
	bash scripts/compose-up.sh
	@# A proxy left running by compose still has the previous leaf if gen-cert.sh
	@# just re-issued it: a graceful reload loads the files (a no-op otherwise).
	$(COMPOSE) exec -T proxy nginx -e stderr -s reload
	@source .env; echo; \
	 echo "  app (through nginx)  https://$${BIND_ADDRESS:-127.0.0.1}:$${HTTPS_PORT:-8443}/"; \
	 echo "  prometheus           http://$${BIND_ADDRESS:-127.0.0.1}:$${PROMETHEUS_PORT:-9090}/targets"

# The same stack with the app's folder bind-mounted and the server reloading
# on code changes (compose.dev.yaml); `make up` again returns to production.
DEV_FILES := -f docker-compose.yml -f compose.dev.yaml

.PHONY: dev
dev: build ## the stack for development: APP_DIR mounted, --reload, debug logs
	python3 scripts/preflight.py $(DEV_FILES)
	bash scripts/compose-up.sh $(DEV_FILES)
	@echo; echo "  dev: edit $(or $(APP_DIR),app/) and reload the page; make up to leave dev mode"

# One-off commands in a fresh container of the app image, with the app's
# environment and network: where migrations run, once per deploy.
.PHONY: run manage
run: ## run CMD="..." in a fresh app container (e.g. CMD="flask db upgrade")
	@test -n "$(CMD)" || { echo 'make run: give CMD="..."' >&2; exit 2; }
	$(COMPOSE) run --rm --no-deps app $(CMD)
manage: ## Django's manage.py: make manage CMD=migrate
	@test -n "$(CMD)" || { echo 'make manage: give CMD="migrate" (a manage.py command)' >&2; exit 2; }
	$(COMPOSE) run --rm --no-deps app python manage.py $(CMD)

# Beyond one machine: the app and proxy images in your registry, with a
# version (git describe of APP_DIR, else of this template), never only latest.
PROJECT ?= $(or $(COMPOSE_PROJECT_NAME),$(shell sed -n 's/^COMPOSE_PROJECT_NAME=//p' .env 2>/dev/null),wsgistack)
TAG ?= $(shell git -C "$(or $(APP_DIR),$(CURDIR))" describe --tags --always --dirty 2>/dev/null)

.PHONY: push push-settings
push-settings:  # before building anything
	@test -n "$(REGISTRY)" || { echo 'make push: give REGISTRY=host[:port]/path' >&2; exit 2; }
	@test -n "$(TAG)" || { echo 'make push: no git version here: give TAG=...' >&2; exit 2; }
push: push-settings build ## tag and push the app and proxy images: REGISTRY=host[:port]/path [TAG=git describe]
	@for service in app proxy; do \
	    docker tag $(PROJECT)/$$service:latest $(REGISTRY)/$$service:$(TAG) \
	    && docker push --quiet $(REGISTRY)/$$service:$(TAG) >/dev/null || exit 1; \
	    echo "pushed $(REGISTRY)/$$service:$(TAG)"; done
	@echo "Swarm: APP_IMAGE=$(REGISTRY)/app:$(TAG) PROXY_IMAGE=$(REGISTRY)/proxy:$(TAG) make deploy-swarm"

.PHONY: down
down: ## stop and remove the stack's containers and networks
	$(COMPOSE) down --remove-orphans

.PHONY: ps
ps: ## show the services and their health
	$(COMPOSE) ps

.PHONY: logs
logs: ## follow every service's logs (SERVICE=app for one)
	$(COMPOSE) logs -f --tail=100 $(SERVICE)

.PHONY: reload
reload: ## zero-downtime reload: the app's workers on every replica (SIGHUP: fresh code), then nginx
	@for id in $$($(COMPOSE) ps -q app); do \
	    docker exec $$id supervisorctl -c /etc/supervisor/supervisord.conf signal HUP server; done
	$(COMPOSE) exec proxy nginx -e stderr -s reload

.PHONY: rolling-restart
rolling-restart: ## replace every app replica with a new one (e.g. after `make build`), one at a time
	COMPOSE="$(COMPOSE)" bash scripts/rolling-restart.sh

.PHONY: workers-up workers-down
workers-up: ## one more worker in the running app (SIGTTIN)
	$(COMPOSE) exec app supervisorctl -c /etc/supervisor/supervisord.conf signal TTIN server
workers-down: ## one worker fewer in the running app (SIGTTOU)
	$(COMPOSE) exec app supervisorctl -c /etc/supervisor/supervisord.conf signal TTOU server

# -- load testing (python -m loadtest; docs/load-testing.md) --------------------
.PHONY: load
load: venv prepare ## load-test through nginx (exit 99: a threshold failed): SCENARIO=mixed [ENGINE=wsgistack|gunicorn|both] [RATE=100|max] [DURATION=60s] [ROUNDS=4] [CONNECTIONS=16] [TARGET=https://…] [FAIL_ON_THRESHOLD=0]
	$(PY) -m loadtest $(SCENARIO) --engine $(or $(ENGINE),wsgistack) \
	  $(if $(RATE),--rate $(RATE)) $(if $(DURATION),--duration $(DURATION)) \
	  $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(CONNECTIONS),--connections $(CONNECTIONS)) \
	  $(if $(TARGET),--target $(TARGET)) $(if $(filter 1,$(INSECURE)),--insecure) \
	  $(if $(RATE_CEILING),--rate-ceiling $(RATE_CEILING)) $(if $(filter 1,$(CONFIRM)),--confirm-rate) \
	  $(if $(filter 0,$(FAIL_ON_THRESHOLD)),--no-fail-on-threshold)

# -- Docker Swarm (deploy/swarm/; docs/deploying.md) ------------------------------
SWARM_STACK ?= wsgistack-swarm

.PHONY: deploy-swarm
deploy-swarm: prepare venv ## deploy or update the stack on this swarm manager (docker stack deploy; SWARM_STACK)
	$(PY) deploy/swarm/swarm.py deploy $(SWARM_STACK)

.PHONY: undeploy-swarm
undeploy-swarm: venv ## remove the swarm stack (Prometheus' volume stays; VOLUMES=1 removes it)
	$(PY) deploy/swarm/swarm.py undeploy $(if $(VOLUMES),--volumes) $(SWARM_STACK)

# -- documentation (mkdocs.yml, docs/) -------------------------------------------
# Material for MkDocs prints an end-of-life banner on every build; it says nothing
# about this site. The Server reference and Metrics pages are written from the
# code by the hook docs/scripts/gen_pages.py, so `mkdocs build` alone builds all.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs
DOCS_ADDR ?= 127.0.0.1:8001

.PHONY: docs
docs: venv ## build the documentation site into site/ (strict; it loads nothing from the network)
	$(MKDOCS) build --strict --site-dir site

.PHONY: docs-serve
docs-serve: venv ## serve the documentation with live reload on http://127.0.0.1:8001/ (DOCS_ADDR=)
	$(MKDOCS) serve --dev-addr $(DOCS_ADDR)

# -- checks ----------------------------------------------------------------------
.PHONY: lint
lint: venv ## ruff lint and format check, mypy on the server package, the docs build (--strict)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/mypy
	$(MKDOCS) build --strict --quiet --site-dir site

.PHONY: test-unit
test-unit: venv ## everything that needs no Docker: the server (unit, conformance, frameworks), app, loadtest, manifests
	$(PY) -m pytest tests/server tests/app tests/loadtest tests/manifests $(PYTEST_ARGS)
	$(PYTHON_LANE) $(PYTEST_ARGS)

# The server's hot path runs compiled in the lanes above; this lane runs the
# conformance and PEP 3333 tests again on its Python source (WSGISTACK_NO_EXTENSIONS).
PYTHON_LANE = WSGISTACK_NO_EXTENSIONS=1 $(PY) -m pytest tests/server/conformance \
	tests/server/unit/test_wsgi.py tests/server/unit/test_protocol.py tests/server/unit/test_hotpath.py

.PHONY: test-integration
test-integration: venv bootstrap host-packages ## the compose stack's tests, tests/stack/integration (builds and runs the stack)
	$(PY) -m pytest tests/stack/integration $(PYTEST_ARGS)

.PHONY: test-swarm
test-swarm: venv bootstrap host-packages ## the Swarm tests alone, tests/stack/swarm (a single-node swarm, made by the test if there is none)
	$(PY) -m pytest tests/stack/swarm $(PYTEST_ARGS)

# Two pytest sessions: the Swarm tests start only once the compose stack of the
# first session is down (`docker swarm init` while compose stacks run has broken
# Docker's DNS for them). Both always run; the first failure is the exit status.
.PHONY: test
test: bootstrap host-packages venv lint ## everything: lint, the tests without Docker and the compose stack's, then the Swarm tests
	status=0; \
	 $(PY) -m pytest tests --ignore=tests/stack/swarm $(PYTEST_ARGS) || status=$$?; \
	 $(PYTHON_LANE) $(PYTEST_ARGS) || { [ $$status -ne 0 ] || status=$$?; }; \
	 $(PY) -m pytest tests/stack/swarm $(PYTEST_ARGS) || { [ $$status -ne 0 ] || status=$$?; }; \
	 exit $$status

# -- benchmark (never part of `make test`) --------------------------------------------
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: requirements/bench.txt requirements/app.txt requirements/constraints.txt server/pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r requirements/bench.txt
	WSGISTACK_NO_EXTENSIONS=1 $(BENCH_VENV)/bin/pip install --quiet --no-deps -e ./server
	touch $@

# The bench runs the server as shipped: its hot path compiled (Cython from requirements/build.txt).
$(BENCH_VENV)/.hotpath: $(BENCH_VENV)/.installed requirements/build.txt $(HOT_SOURCES)
	$(BENCH_VENV)/bin/pip install --quiet -r requirements/build.txt
	cd server && ../$(BENCH_VENV)/bin/python setup.py --quiet build_ext --inplace
	touch $@

# --install-missing: nginx and wrk, and the C servers of requirements/bench-c.txt
# (their build packages apt-installed first, then pip), each left out if it fails
.PHONY: bench
bench: $(BENCH_VENV)/.hotpath ## wsgistack vs gunicorn, waitress, granian, bjoern, uWSGI (BENCH_* settings; docs/benchmark.md)
	$(BENCH_VENV)/bin/python -m loadtest.bench --install-missing

.PHONY: clean
clean: ## remove the stack with its volumes, the venv, caches and the compiled hot path
	-$(COMPOSE) down -v --remove-orphans
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis site server/build
	find server/src \( -name '*.c' -o -name '*.so' \) -delete
