# helmops — run `make help` for the targets.
SHELL := /usr/bin/env bash
BIN := $(CURDIR)/bin
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS := -X github.com/helmops/helmops/internal/version.Version=$(VERSION) -X github.com/helmops/helmops/internal/version.Commit=$(COMMIT)
TEST_TIMEOUT ?= 60m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/helmops
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/helmops ./cmd/helmops

.PHONY: dev
dev: envtest build ## Run helmops locally: control planes, repositories, controller and agents (Ctrl-C stops all)
	$(BIN)/helmops dev

.PHONY: generate
generate: ## Regenerate deepcopy code and CRDs (controller-gen through the Go toolchain)
	$(GO) tool controller-gen object paths=./api/...
	$(GO) tool controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	cp config/crd/bases/*.yaml charts/helmops/crds/

.PHONY: verify
verify: generate ## Fail when generated files are stale or code is not gofmt/vet clean
	@test -z "$$(gofmt -l api cmd internal hack 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l api cmd internal hack; exit 1; }
	$(GO) vet ./...
	@git diff --exit-code -- api config charts/helmops/crds || { echo "generated files are stale: run make generate and commit"; exit 1; }

.PHONY: envtest
envtest: ## Build the control-plane binaries (kube-apiserver, kube-controller-manager, etcd, kubectl) into bin/ once
	bash hack/build-controlplane.sh

.PHONY: test
test: envtest ## Run every test against real control planes, registries and Helm
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

.PHONY: bench
bench: ## Run the benchmarks written up in docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
