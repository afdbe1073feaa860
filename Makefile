# Slipway: `make run` starts everything with embedded defaults, `make test`
# sets up and runs the whole suite. Both install what they need.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
# slipway version prints both; a build from a dirty checkout says so.
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)
VERSION := $(shell git describe --tags --match 'v*' --always 2>/dev/null || echo dev)
# Built tools are reused while go.sum (which pins them) is unchanged.
TOOLS_KEY := $(shell sha256sum go.sum 2>/dev/null | cut -c1-16)
TOOLS_STAMP := $(BIN)/.tools-$(TOOLS_KEY)
# The CNI plugins buildkitd's bridge network runs for every RUN step.
CNI_PLUGINS := $(addprefix github.com/containernetworking/plugins/plugins/,main/bridge main/loopback ipam/host-local meta/firewall)

.PHONY: build run test chaos bench deps tools slipway vet lint fuzz fmt-check tidy-check layering-check clean

build: slipway tools

slipway:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN)/slipway ./cmd/slipway

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): go.sum
	@./scripts/deps.sh build
	@mkdir -p $(BIN)
	@echo "building buildkitd, runc and the CNI plugins from go.mod (a few minutes the first time)"
	CGO_ENABLED=1 $(GO) build -tags seccomp -o $(BIN)/runc github.com/opencontainers/runc
	$(GO) build -o $(BIN)/buildkitd github.com/moby/buildkit/cmd/buildkitd
	@mkdir -p $(BIN)/cni
	$(GO) build -o $(BIN)/cni/ $(CNI_PLUGINS)
	@rm -f $(BIN)/.tools-*
	@touch $@

# System packages the tests use: git (smart-HTTP server and pushes),
# busybox-static (the offline base image), qemu-user-static (arm64 builds),
# libseccomp-dev and pkg-config (runc is built with seccomp, which BuildKit
# expects), iptables (the build network's firewall), chromium (the
# dashboard's browser test).
deps:
	@./scripts/deps.sh

run: build
	$(BIN)/slipway serve

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# go.mod and go.sum must be exactly what `go mod tidy` writes.
tidy-check:
	$(GO) mod tidy -diff

# Data flows one way: the API and the workers never reach back into the
# webhook handler (ARCHITECTURE.md).
layering-check:
	@if $(GO) list -deps ./api ./worker | grep -qx 'github.com/slipway-build/slipway/webhook'; then \
		echo "api or worker imports package webhook:"; $(GO) list -deps ./api ./worker | grep slipway; exit 1; fi

# staticcheck and gosec run from go.mod's tool lines, so everyone runs the
# same versions. Every gosec finding left in Slipway's code is excused
# where it is, with a `#nosec G### -- reason` comment. Two exclusions are
# global: gosec reads no _test.go files (its default), and -exclude-dir=e2e
# leaves out the end-to-end rig, which is test code in ordinary files:
# starting the built binary, git and buildkitd with variable arguments
# (G204), writing temp files and fixtures (G304, G306, G301), serving git
# over net/http/cgi on loopback (G504, G112) is what it is for.
lint:
	$(GO) tool staticcheck ./...
	$(GO) tool gosec -quiet -exclude-dir=e2e ./...

# Each fuzz target runs for FUZZTIME; go test -fuzz takes one target per
# run, hence the loop. New inputs are minimised for a second at most: the
# webhook seeds are whole payloads, whose minimising would otherwise take
# most of the run. `make test` runs the seed corpora (f.Add and
# testdata/fuzz/) as ordinary tests.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./forge/github:FuzzWebhook ./forge/gitlab:FuzzWebhook ./forge/gitea:FuzzWebhook \
	./forge/bitbucket:FuzzWebhook ./rules:FuzzPlans ./rules:FuzzTemplate ./api:FuzzCreateRepo ./deploy:FuzzSignVerify \
	./redact:FuzzText
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $${t%%:*}; \
	done

# Test artifacts (the dashboard test's screenshots) are kept under
# bin/test-output/_artifacts.
test: deps build fmt-check tidy-check layering-check vet lint
	mkdir -p $(BIN)/test-output
	PATH=$(BIN):$$PATH $(GO) test -count=1 -timeout 40m -artifacts -outputdir $(BIN)/test-output ./...

# The fault tests alone (make test runs them too): kill -9 of workers,
# buildkitd and NATS nodes, registry and receiver outages, floods. Only
# this target rewrites RELIABILITY.md with what they measured: e2e's TestMain
# writes it when SLIPWAY_WRITE_RELIABILITY=1, which nothing else sets.
chaos: deps build
	SLIPWAY_WRITE_RELIABILITY=1 PATH=$(BIN):$$PATH $(GO) test -count=1 -timeout 30m -run 'TestChaos' -v ./e2e/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok)'; exit $${PIPESTATUS[0]}

# The benchmarks (bench/) measure Slipway side by side with the same work
# by hand and write BENCHMARKS.md and bench/chart.png; BENCH picks some
# (a go test -bench pattern), whose report goes to bin/bench/ so that the
# published whole stays one run. make test runs only bench's unit tests.
BENCH ?= .
BENCH_OUT = $(if $(filter .,$(BENCH)),1,$(BIN)/bench)
bench: deps build
	SLIPWAY_WRITE_BENCHMARKS=$(BENCH_OUT) PATH=$(BIN):$$PATH $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 1x -timeout 60m ./bench/

clean:
	rm -rf $(BIN)
