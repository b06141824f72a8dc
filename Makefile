# pgrouter build, test and tooling entry points. `make help` lists them.
GO ?= go
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BIN       := bin/pgrouter
PKGS      := ./...
TEST_LOG  := bin/test.log
# -p 1: packages that start Postgres clusters run one at a time (two cores).
TESTFLAGS ?= -race -count=1 -p 1 -timeout 15m

.PHONY: all help build test lint vet fmt demo bench clean

all: build

help:
	@echo "make build   - build $(BIN)"
	@echo "make test    - go vet and all tests with -race against real Postgres (summary at the end)"
	@echo "make lint    - gofmt must report nothing, and go vet"
	@echo "make demo    - start a local sharded cluster and pgrouter in front of it"
	@echo "make bench   - proxy vs direct vs PgBouncer measurements"

build:
	$(GO) build -o $(BIN) ./cmd/pgrouter

# go vet first; tests run even if vet complains (so one broken package does
# not hide every other result) and the target fails if either did. Tests
# print as they run; the log is kept in $(TEST_LOG) so the summary can list
# every package and test that failed, whatever scrolled past.
test:
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

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './vendor/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@echo "lint: ok"

fmt:
	gofmt -w $$(git ls-files '*.go')

demo:
	$(GO) run ./cmd/pgrouter demo

bench:
	$(GO) run ./test/bench

clean:
	rm -rf bin
