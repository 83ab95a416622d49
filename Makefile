# Foxflow — the targets a newcomer needs. `make help` lists them.

SHELL := /bin/bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help run test build check-services lint fmt bench deploy-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build every binary (debug)
	$(CARGO) build --workspace --bins --locked

run: check-services ## migrate, start the API and both workers, print the address and an admin token
	@scripts/run.sh

test: check-services ## the whole test suite: unit, end-to-end against the real PostgreSQL and RabbitMQ, deploy checks
	python3 scripts/module-cycles.py
	$(CARGO) build --workspace --bins --locked
	scripts/install-browser.sh
	scripts/install-test-servers.sh
	$(CARGO) test --workspace --locked --no-fail-fast
	scripts/schemathesis.sh
	scripts/fuzz.sh short
	scripts/check-deploy.sh

check-services: ## make sure PostgreSQL and RabbitMQ answer, or say how to start them
	@scripts/check-services.sh

.PHONY: fuzz
fuzz: ## fuzz the upload readers, header matcher and normalisers, 10 min per target (FUZZ_SECONDS)
	scripts/fuzz.sh long

bench: check-services ## docs/spec.md §14 measurements side by side (release build); writes docs/benchmarks.md
	scripts/install-bench-tools.sh
	python3 bench/run.py

lint: ## formatting, clippy (warnings as errors), no module cycle inside a crate
	python3 scripts/module-cycles.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

deploy-check: ## validate deploy/: base + overlays (strict schemas, network, budget), promtool rules and tests, compose, RabbitMQ definitions
	$(CARGO) build -p foxctl --locked
	scripts/check-deploy.sh

clean: ## remove build output and local run state
	$(CARGO) clean
	rm -rf .run
