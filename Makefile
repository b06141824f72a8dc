# pgrouter build, test and tooling entry points. `make help` lists them.
GO ?= go
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BIN       := bin/pgrouter
PKGS      := ./...
TEST_LOG  := bin/test.log
# -p 1: packages that start Postgres clusters run one at a time (two cores).
TESTFLAGS ?= -race -count=1 -p 1 -timeout 15m

.PHONY: all help deps build test lint vet staticcheck fmt demo bench soak fuzz clean

all: build

help:
	@echo "make deps    - install the Debian packages and node modules the tests need (root; no-op when present)"
	@echo "make build   - build $(BIN)"
	@echo "make test    - deps, go vet and all tests with -race against real Postgres (summary at the end)"
	@echo "make lint    - gofmt must report nothing, go vet, staticcheck (pinned in go.mod)"
	@echo "make demo    - start a local sharded cluster and pgrouter in front of it"
	@echo "make bench   - proxy vs direct vs PgBouncer measurements, issue 14's goals (BENCH_QUICK=1 BENCH_REPEAT=3 BENCH_ONLY=c32)"
	@echo "make fuzz    - session-liveness fuzzer vs Postgres (FUZZTIME=10m; WIRE_FUZZ_FRESH=1: a fresh pgrouter per input)"
	@echo "make soak    - thousands of clients for minutes; goroutines/fds/RSS must stay flat (SOAK_CLIENTS=2000 SOAK_DURATION=2m SOAK_THINK=1s)"

# The package list lives in scripts/deps.sh only.
deps:
	@scripts/deps.sh

# The first build on a machine compiles pg_query_go's C parser (cgo) and is
# silent for minutes: say so before it starts.
build:
	@case "$$($(GO) list -f '{{.Stale}}:{{.StaleReason}}' github.com/pganalyze/pg_query_go/v6)" in \
	false:* | *"available in build cache"*) echo "building $(BIN)" ;; \
	*) echo "building $(BIN): first build on this machine, compiling the cgo PostgreSQL parser (pg_query_go) takes 1-2 min on 2 cores; later builds take seconds" ;; \
	esac
	@$(GO) build -o $(BIN) ./cmd/pgrouter

# go vet first; tests run even if vet complains (so one broken package does
# not hide every other result) and the target fails if either did. Tests
# print as they run; the log is kept in $(TEST_LOG) so the summary can list
# every package and test that failed, whatever scrolled past.
test: deps
	@mkdir -p $(dir $(TEST_LOG))
	@start=$$(date +%s); vet=0; status=0; \
	$(GO) vet $(PKGS) || vet=$$?; \
	$(GO) test $(TESTFLAGS) $(PKGS) 2>&1 | tee $(TEST_LOG) || status=$$?; \
	echo; echo "==================== test summary ===================="; \
	echo "go vet:            $$([ $$vet = 0 ] && echo ok || echo FAILED)"; \
	echo "packages ok:       $$(grep -c '^ok ' $(TEST_LOG) || true)"; \
	echo "packages failed:   $$(grep -cP '^FAIL\t' $(TEST_LOG) || true)"; \
	echo "no test files:     $$(grep -c 'no test files' $(TEST_LOG) || true)"; \
	echo "tests failed:      $$(grep -cE '^\s*--- FAIL' $(TEST_LOG) || true)"; \
	grep -E '^(FAIL\s|\s*--- FAIL|panic:)' $(TEST_LOG) | sed 's/^/  /' || true; \
	echo "elapsed:           $$(( $$(date +%s) - start ))s (full log: $(TEST_LOG))"; \
	[ $$vet = 0 ] && [ $$status = 0 ]

vet:
	$(GO) vet $(PKGS)

# Not part of `make test`: the soak test builds only with the soak tag. It
# prints a table of pgrouter's goroutines, fds and RSS every 10 s.
# Example: make soak SOAK_CLIENTS=10000 SOAK_DURATION=10m
soak:
	$(GO) test -tags soak -count=1 -v -timeout 0 ./test/soak/

# Not part of `make test` (its seed corpus is): liveness fuzzing of pgrouter
# sessions against Postgres (test/wire FuzzSessionLiveness). -timeout 0:
# go test's default 10 minutes would kill longer runs.
FUZZTIME ?= 10m
fuzz:
	$(GO) test -timeout 0 -run '^$$' -fuzz FuzzSessionLiveness -fuzztime $(FUZZTIME) -parallel 1 ./test/wire/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './vendor/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@echo "lint: ok (gofmt, go vet, staticcheck)"

staticcheck:
	$(GO) tool staticcheck $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# make demo DEMO_FLAGS="--shards 4 --replicas 0" (see bin/pgrouter demo --help)
demo: build
	@$(BIN) demo $(DEMO_FLAGS)

# make bench BENCH_QUICK=1 (smoke run, -T 3) BENCH_REPEAT=3 BENCH_ONLY="c32"
bench:
	$(GO) run ./test/bench $(if $(BENCH_QUICK),--quick) $(if $(BENCH_REPEAT),--repeat $(BENCH_REPEAT)) $(if $(BENCH_ONLY),--only "$(BENCH_ONLY)")

clean:
	rm -rf bin
