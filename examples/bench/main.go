// Command bench runs strata's side-by-side benchmarks in one process and
// writes their report: the generated section of docs/benchmarks.md (the
// text between the bench-report markers, nothing else) and its charts,
// docs/img/bench-*.png.
//
// It measures, in one run:
//
//   - the L1 hit (a warm key read by GOMAXPROCS goroutines) of strata's
//     core.GetOrSet, raw otter v2 (the reference: strata's L1 engine),
//     sturdyc, eko/gocache on ristretto and go-redis/cache's local TinyLFU,
//     on 1 and 2 cores (GOMAXPROCS), with testing.Benchmark;
//   - the hit ratio of each cache's eviction policy on Zipf traces;
//   - the time from core.Set on node A until node B hears of it, on the
//     real Redis, NATS and RabbitMQ, next to each raw client's
//     publish → receive;
//   - the time from core.Set on node A until node B serves the new value
//     (both with a Redis L2), per backplane, next to the raw clients doing
//     the same (SET, publish → receive, GET), one trip of each in turn:
//     a CDF per backplane, docs/img/bench-update-<transport>.png.
//
// The servers are those of the tests: $STRATA_REDIS_ADDR, $STRATA_NATS_URL
// and $STRATA_AMQP_URL, defaulting to the local ones.
//
//	go run ./examples/bench                # the full run, 2 to 5 minutes on 2 cores
//	go run ./examples/bench -quick         # a smoke run of about 20 seconds
//	go run ./examples/bench -doc /tmp/b.md -img /tmp/img   # write elsewhere
//
// `make bench-report` runs the full one.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func main() {
	testing.Init() // testing.Benchmark reads -test.benchtime
	cfg := config{}
	flag.BoolVar(&cfg.Quick, "quick", false, "a smoke run of about 20 seconds: shorter benchmarks, smaller traces, fewer trips")
	doc := flag.String("doc", "docs/benchmarks.md", "the markdown file whose bench-report section is replaced")
	img := flag.String("img", "docs/img", "the directory the charts are written to (linked from -doc as a relative path)")
	flag.IntVar(&cfg.Count, "count", 0, "rounds of the L1 hit benchmark, the median kept (0: 5, or 1 with -quick)")
	flag.DurationVar(&cfg.BenchTime, "benchtime", 0, "time per L1 hit benchmark (0: 1s, or 100ms with -quick)")
	flag.IntVar(&cfg.Trips, "trips", 0, "measured trips per backplane and path, and rounds of update trips per backplane (0: 2000, or 200 with -quick)")
	flag.IntVar(&cfg.Requests, "requests", 0, "requests per hit-ratio trace (0: 1,000,000, or 100,000 with -quick)")
	flag.BoolVar(&cfg.SkipLatency, "skip-latency", false, "do not measure the backplanes (no server needed)")
	flag.Parse()
	cfg.defaults()
	if err := flag.Set("test.benchtime", cfg.BenchTime.String()); err != nil {
		fail(err)
	}
	cfg.Command = "go run ./examples/bench " + strings.Join(os.Args[1:], " ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fail(err)
	}
	rel, err := filepath.Rel(filepath.Dir(*doc), *img)
	if err != nil {
		rel = *img
	}
	section, charts := render(res, filepath.ToSlash(rel))
	if err := os.MkdirAll(*img, 0o755); err != nil {
		fail(err)
	}
	for _, ch := range charts {
		path := filepath.Join(*img, ch.File)
		if err := writePNG(path, ch.Chart); err != nil {
			fail(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	if err := replaceFileSection(*doc, section); err != nil {
		fail(err)
	}
	fmt.Fprintln(os.Stderr, "wrote the bench-report section of", *doc)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// config is what one run measures.
type config struct {
	Quick       bool
	Count       int
	BenchTime   time.Duration
	Trips       int
	Requests    int
	SkipLatency bool
	Command     string
}

func (c *config) defaults() {
	pick := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	pick(&c.Count, 5, 1)
	pick(&c.Trips, 2000, 200)
	pick(&c.Requests, 1_000_000, 100_000)
	if c.BenchTime <= 0 {
		c.BenchTime = time.Second
		if c.Quick {
			c.BenchTime = 100 * time.Millisecond
		}
	}
}
