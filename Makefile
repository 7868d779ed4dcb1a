# wsgistack — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COMPOSE := docker compose
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# -- set-up (each step skips what is already there) ------------------------------
$(VENV)/.installed: requirements/dev.txt requirements/app.txt requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create .venv with the pinned test tools

.PHONY: bootstrap
bootstrap: ## make Docker, compose v2 and the base image available (installs them if missing)
	bash scripts/bootstrap.sh

.env:
	cp .env.example .env

.PHONY: prepare
prepare: bootstrap .env ## bootstrap, .env, TLS certificate and wheelhouse
	bash scripts/gen-cert.sh
	bash scripts/wheels.sh

# -- the stack -------------------------------------------------------------------
.PHONY: build
build: prepare ## build every image
	$(COMPOSE) build

.PHONY: up
up: prepare ## build and start the stack; returns when every service is healthy
	$(COMPOSE) up -d --build --wait
	@source .env; echo; \
	 echo "  app (through nginx)  https://$${BIND_ADDRESS:-127.0.0.1}:$${HTTPS_PORT:-8443}/"; \
	 echo "  prometheus           http://$${BIND_ADDRESS:-127.0.0.1}:$${PROMETHEUS_PORT:-9090}/targets"

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
reload: ## zero-downtime reload of the app: new workers with fresh code, old ones retire (SIGHUP)
	$(COMPOSE) exec app supervisorctl -c /etc/supervisor/supervisord.conf signal HUP server

.PHONY: workers-up workers-down
workers-up: ## one more worker in the running app (SIGTTIN)
	$(COMPOSE) exec app supervisorctl -c /etc/supervisor/supervisord.conf signal TTIN server
workers-down: ## one worker fewer in the running app (SIGTTOU)
	$(COMPOSE) exec app supervisorctl -c /etc/supervisor/supervisord.conf signal TTOU server

# -- Docker Swarm (deploy/swarm/; README "Deploying beyond one machine") ------------
SWARM_STACK ?= wsgistack-swarm

.PHONY: deploy-swarm
deploy-swarm: prepare venv ## deploy or update the stack on this swarm manager (docker stack deploy; SWARM_STACK)
	$(PY) scripts/swarm.py deploy $(SWARM_STACK)

.PHONY: undeploy-swarm
undeploy-swarm: venv ## remove the swarm stack (Prometheus' volume stays; VOLUMES=1 removes it)
	$(PY) scripts/swarm.py undeploy $(if $(VOLUMES),--volumes) $(SWARM_STACK)

# -- checks ----------------------------------------------------------------------
.PHONY: lint
lint: venv ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: test-unit
test-unit: venv ## unit and conformance tests (no Docker needed)
	$(PY) -m pytest tests/unit tests/conformance $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: venv bootstrap ## compose-based integration tests (builds and runs the stack)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

.PHONY: test
test: venv bootstrap lint ## everything: lint, unit, conformance and integration tests
	$(PY) -m pytest tests $(PYTEST_ARGS)

.PHONY: clean
clean: ## remove the stack with its volumes, the venv and caches
	-$(COMPOSE) down -v --remove-orphans
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
