# CCHC Monitor — the two commands: `make run` (whole system locally) and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
export PYTHONPATH := $(CURDIR)

.PHONY: install run test lint format bench token asyncapi openapi migrate

install: ## install uv (if missing) and the locked dependencies into .venv
	@command -v uv >/dev/null 2>&1 || test -x $(UV) || python3 -m pip install --user --quiet uv
	@$(UV) sync --locked --quiet
	@# JSON Schemas the contract tests validate against (AsyncAPI 3.0), from the npm registry
	@test tools/asyncapi/node_modules/.package-lock.json -nt tools/asyncapi/package-lock.json \
		|| npm ci --prefix tools/asyncapi --silent --no-audit --no-fund

run: install ## start PostgreSQL, broker, simulator and the three services; Ctrl-C stops all
	@$(RUN) python scripts/run_local.py

test: install ## every test, against a real PostgreSQL and a real Kafka-protocol broker
	@$(RUN) pytest $(PYTEST_ARGS)

lint: install ## ruff (check + format check) and mypy
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy

format: install
	@$(RUN) ruff format .
	@$(RUN) ruff check --fix .

bench: install ## benchmarks; figures go to docs/benchmarks.md by hand
	@$(RUN) python bench/run_all.py

token: install ## a development token: make token ROLE=officer UNIT=P21.SNV
	@$(RUN) python -m shared.auth.tokens --role $(or $(ROLE),admin) $(if $(UNIT),--unit $(UNIT))

asyncapi: install ## regenerate docs/asyncapi.yaml from the payload models
	@$(RUN) python -m shared.events.asyncapi > docs/asyncapi.yaml

openapi: install ## regenerate docs/openapi/<service>.json
	@$(RUN) python scripts/export_openapi.py

migrate: install ## apply every service's migrations to DATABASE_URL
	@$(RUN) python -m shared.migrate all upgrade
