# The test commands README.md gives and .ci/run runs. test: a gofmt check,
# then every test with the race detector and every vet analyzer (-vet=all:
# vet inside go test reuses the race build instead of compiling everything
# a second time, as a separate go vet would), after making sure the local
# servers are up. internal/sim's TestSim (its kept seeds and 2,000 fresh
# ones) runs apart, without the race detector, which made it five times
# slower (185 s of a fresh make test): the same seeds are checked the same;
# core's own tests keep the race detector. `make sim` runs 20,000 seeds.
# The go list first compiles (without linking) what the example programs
# import, with -race: examples/examples_test.go builds them while go test
# compiles other packages, and on an empty build cache both compiled the
# same dependencies at once. SQLite (examples/profileapi's -tags sqlite) is
# not in the default build: its Go translation took ~57 CPU-seconds with -race.
# README.md has the measured times.
# test-e2e: the end-to-end tests behind the e2e build tag, which need more
# than the services: examples/jaeger's traces exported to a real Jaeger v2,
# built once by scripts/jaeger.sh (8 to 13 minutes the first time, cached in
# ${STRATA_CACHE_DIR:-~/.cache/strata}), started, and stopped at the end.
GO ?= go
# TEST_P: how many packages make test builds and tests at once. Many test
# packages spend most of their time waiting (on servers, timeouts, other
# nodes), so 4 on 2 cores keeps the cores busy; on a fresh machine it took
# make test from 419 s to 325 s (README.md).
TEST_P ?= 4

.PHONY: test test-e2e vet fmtcheck services quickstart bench fuzz

test: services fmtcheck
	$(GO) list -race -p $(TEST_P) -deps -export ./examples/... >/dev/null
	STRATA_SIM=0 $(GO) test -race -vet=all -count=1 -p $(TEST_P) ./...
	$(GO) test -count=1 -run '^TestSim$$' ./internal/sim

test-e2e: services jaeger-build
	CI=true $(GO) test -race -count=1 -tags e2e -run '^TestJaeger(EndToEnd|ExampleExportsAndExitsZero)$$' -v ./examples/jaeger

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
.PHONY: jaeger jaeger-build jaeger-stop jaeger-example
jaeger-build:
	bash scripts/jaeger.sh build

jaeger:
	bash scripts/jaeger.sh start

jaeger-stop:
	bash scripts/jaeger.sh stop

jaeger-example: jaeger
	$(GO) run ./examples/jaeger

# Hardening (docs/hardening.md). fuzz-long: each wire-format decoder fuzzed
# for $(FUZZTIME) (10 minutes) on one worker, one after the other; inputs
# that reach new code land in $(go env GOCACHE)/fuzz (copy the small ones
# into the package's testdata/fuzz/<Fuzzer>/ to replay them in every run).
# soak: the soak test for $(SOAK_DURATION) (10 minutes), without the race
# detector so that the load is heavier (SOAK_FLAGS=-race adds it; `make
# test` runs the short version with it); STRATA_SOAK_BACKPLANE=nats or amqp
# picks another backplane. soak-short: the 18-second version `make test` runs.
FUZZTIME ?= 10m
SOAK_DURATION ?= 10m
SOAK_FLAGS ?=
.PHONY: fuzz-long soak soak-short
fuzz-long:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME) -parallel 1 ./l2
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessage$$' -fuzztime $(FUZZTIME) -parallel 1 ./backplane
	$(GO) test -run '^$$' -fuzz '^FuzzKeyringOpenReseal$$' -fuzztime $(FUZZTIME) -parallel 1 ./backplane

soak: services
	STRATA_SOAK_DURATION=$(SOAK_DURATION) $(GO) test $(SOAK_FLAGS) -count=1 -run '^TestSoak$$' -v -timeout 30m ./soak

soak-short: services
	$(GO) test -race -count=1 -run '^TestSoak$$' -v ./soak

# The side-by-side report of docs/benchmarks.md (the section between the
# bench-report markers) and its charts docs/img/bench-*.png: strata's L1 hit
# vs otter, sturdyc, eko/gocache and go-redis/cache on 1 and 2 cores, their
# hit ratios on Zipf traces, set→received latency per backplane vs the raw
# clients, and update on A → served by B per backplane vs the raw clients
# (docs/img/bench-update-<transport>.png). 2 to 5 minutes on 2 cores (more under load); BENCH_FLAGS=-quick
# for a smoke run of about 20 s.
.PHONY: bench-report
bench-report: services
	$(GO) run ./examples/bench $(BENCH_FLAGS)

# The failure scenarios with 30 s faults on every backplane (docs/reliability.md).
.PHONY: reliability-long
reliability-long:
	STRATA_RELIABILITY_SCALE=1 $(GO) test -race -count=1 -timeout 40m -v ./reliability/

# The slow-factory run (docs/reliability.md, "Slow factories"): three nodes
# per backplane, factories taking 0-300 ms, every read checked; all three
# backplanes at once for $(COHERENCE_DURATION) (10 minutes). `make test`
# runs it for 15 s per backplane.
COHERENCE_DURATION ?= 10m
.PHONY: coherence-long
coherence-long: services
	STRATA_COHERENCE_DURATION=$(COHERENCE_DURATION) $(GO) test -race -count=1 -parallel 3 -run '^TestSlowFactories$$' -v -timeout 40m ./reliability/

# The deterministic simulation of the cluster (internal/sim; docs/reliability.md,
# "Deterministic simulation"): the seeds kept in internal/sim/testdata, then
# SEEDS fresh seeds from SIM_START (default: the time, so each run explores new
# seeds; the first is printed), two at a time on 2 cores, without the race
# detector (about 7,500 seeds a minute; SIM_FLAGS=-race: 1,400 to 2,100). A
# failure prints its seed, the command that replays it, and its shrunk trace.
# SIM_ARGS go to the test: -allow=A,B counts the violations of known open
# defects without failing, -maxfail=N stops after N failing seeds (3).
SEEDS ?= 20000
SIM_START ?= $(shell date +%s)
SIM_FLAGS ?=
SIM_ARGS ?=
.PHONY: sim
sim:
	@echo "sim: $(SEEDS) seeds from $(SIM_START)"
	$(GO) test $(SIM_FLAGS) -count=1 -timeout 0 -run '^TestSim$$' -v ./internal/sim -seeds=$(SEEDS) -start=$(SIM_START) $(SIM_ARGS)

# Database commit -> every node serves the new value, beside the raw floor
# (commit -> a bare pglogrepl client gets the commit), paired over
# $(CDC_ROUNDS) single-row UPDATEs on a private PostgreSQL (wal_level=logical)
# with two nodes on the Redis L2 and backplane (docs/benchmarks.md,
# "Database changes (CDC)"). Needs the PostgreSQL binaries and Redis.
CDC_ROUNDS ?= 400
.PHONY: bench-cdc
bench-cdc:
	STRATA_BENCH_CDC=1 STRATA_BENCH_CDC_ROUNDS=$(CDC_ROUNDS) $(GO) test -count=1 -run '^TestCDCLatency$$' -v ./invalidation/pgcdc/
