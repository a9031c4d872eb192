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

# Jaeger v2 on 127.0.0.1 (OTLP 4317/4318, UI and API 16686): built once (about
# 8 minutes) into ${STRATA_CACHE_DIR:-~/.cache/strata}, then started; `make
# jaeger-example` sends examples/jaeger's traces to it (docs/observability.md).
.PHONY: jaeger jaeger-stop jaeger-example
jaeger:
	bash scripts/jaeger.sh start

jaeger-stop:
	bash scripts/jaeger.sh stop

jaeger-example: jaeger
	$(GO) run ./examples/jaeger
