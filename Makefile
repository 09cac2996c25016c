# pipeline-recovery: every target sets up the virtual environment it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins dependencies that clash with ours, so it lives in its own tool venv.
VENV_CHECKOV := .venv-checkov
CHECKOV_VERSION := 3.2.533
CHECKOV_STAMP := $(VENV_CHECKOV)/.installed-$(CHECKOV_VERSION)
export CHECKOV := $(VENV_CHECKOV)/bin/checkov
IMG ?= pipeline-recovery:dev
KIND_CLUSTER ?= pipeline-recovery

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml setup.py operator/pipeline_recovery/_native_scan.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(CHECKOV_STAMP):
	@test -x $(VENV_CHECKOV)/bin/python || $(PYTHON) -m venv $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_CHECKOV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

.PHONY: checkov
checkov: $(CHECKOV_STAMP) ## Install checkov (manifest and Dockerfile scanner) into .venv-checkov

.PHONY: venv
venv: $(STAMP) ## Create the local virtual environment (.venv) with the package and dev tools

.PHONY: lint
lint: $(STAMP) ## ruff and mypy --strict on the package
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy

.PHONY: test
test: lint $(CHECKOV_STAMP) ## Lint, then every test tier that runs on this machine (unit, integration, contract, rules, scanners)
	$(BIN)/python -m pytest -q

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests only
	$(BIN)/python -m pytest -q tests/unit

.PHONY: test-integration
test-integration: $(STAMP) ## The operator against KMock's Kubernetes emulator
	$(BIN)/python -m pytest -q tests/integration

.PHONY: test-contract
test-contract: $(STAMP) $(CHECKOV_STAMP) ## CRD, manifests, RBAC, alert rules and scanners
	$(BIN)/python -m pytest -q tests/contract

.PHONY: bench
bench: $(STAMP) ## Benchmarks: classifier throughput and memory, operator latency, LLM token savings
	$(BIN)/python -m bench

.PHONY: rules
rules: $(STAMP) ## Regenerate manifests/prometheus/prometheusrule.yaml from the plain alert rules file
	$(BIN)/python hack/gen_prometheusrule.py

.PHONY: demo
demo: $(STAMP) ## The whole flow on an embedded emulated cluster (no cluster needed)
	$(BIN)/pipeline-recovery demo

.PHONY: run
run: $(STAMP) ## Run the operator against the current kubeconfig's cluster
	$(BIN)/pipeline-recovery run $(if $(NAMESPACE),--namespace $(NAMESPACE),--all-namespaces)

.PHONY: install
install: ## Install the CRDs into the current cluster
	kubectl apply -k crds/

.PHONY: uninstall
uninstall: ## Remove the CRDs from the current cluster
	kubectl delete -k crds/

.PHONY: deploy
deploy: install ## Deploy the operator (manifests/) into the current cluster
	kubectl apply -k manifests/

.PHONY: undeploy
undeploy: ## Remove the operator from the current cluster
	kubectl delete -k manifests/

.PHONY: docker-build
docker-build: ## Build the operator image (needs a Docker engine)
	docker build -t $(IMG) .

.PHONY: test-e2e
test-e2e: $(STAMP) ## Real-cluster tier with kind; skips with one line where Docker or kind is missing
	IMG=$(IMG) KIND_CLUSTER=$(KIND_CLUSTER) bash tests/e2e/run.sh

.PHONY: e2e
e2e: test-e2e ## Alias of test-e2e

.PHONY: clean
clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build operator/pipeline_recovery/*.so
