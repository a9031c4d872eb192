# The test command README.md gives and .ci/run runs: vet, a gofmt check, then
# every test with the race detector, after making sure the local servers are up.
GO ?= go

.PHONY: test vet fmtcheck services quickstart bench fuzz

test: services vet fmtcheck
	$(GO) test -race -count=1 ./...

services:
	bash scripts/services.sh

vet:
	$(GO) vet ./...

fmtcheck:
	@out=$$(gofmt -l . | grep -v '^vendor/'); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

quickstart:
	$(GO) run ./examples/quickstart

# Benchmarks behind docs/benchmarks.md (2 cores: keep -benchtime modest).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./core/

# Each wire-format decoder fuzzed for 60 s (DESIGN.md section 4).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeEnvelope -fuzztime 60s ./l2
	$(GO) test -run '^$$' -fuzz FuzzDecodeMessage -fuzztime 60s ./backplane
