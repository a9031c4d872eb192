// Command jaeger runs two strata nodes, A and B, that share an L2 and a
// backplane, traces them with strataotel, and exports the traces to Jaeger
// over OTLP, so that a change made on one node can be followed to the other:
// B's strata.backplane.receive span links to the write on A that caused it.
//
// It plays a short scenario, one traced request per step, and prints each
// step's trace ID:
//
//  1. A misses user:42: L2 miss, the factory queries the database, L2 write,
//     publish.
//  2. B reads user:42: found in L2 (no database call).
//  3. B reads it again: an L1 hit (a span only because the request is
//     traced).
//  4. A updates the profile: core.Set writes L2 and publishes; B's receipt
//     is linked to A's set span.
//  5. B reads the new value from L2.
//  6. B expires the entry (an invalidation on the other node); A's receipt
//     is linked to it.
//  7. The database is down: A's read is answered by fail-safe with the
//     stale value.
//
// It exits with status 1 if a step does not behave as described or if any
// span could not be exported (no collector answering at -otlp): it never
// reports traces it did not deliver.
//
// Metrics are exported with the OpenTelemetry Prometheus exporter on
// http://127.0.0.1:9464/metrics while the scenario runs (and until
// interrupted with -serve).
//
//	scripts/jaeger.sh                 # a local Jaeger v2 (built once, then started)
//	go run ./examples/jaeger          # Redis L2 and backplane on 127.0.0.1:6379
//	go run ./examples/jaeger -l2 mem://demo -backplane mem://demo   # no Redis
//	go run ./examples/jaeger -otlp http://127.0.0.1:4318            # OTLP over HTTP
//	go run ./examples/jaeger -waterfall docs/img                    # draw the update's cross-node trace
//
// Then open http://127.0.0.1:16686 (the services are strata-example-a and
// strata-example-b), or read the JSON API:
// curl 'http://127.0.0.1:16686/api/traces?service=strata-example-a'.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	cfg := config{Out: os.Stdout}
	flag.StringVar(&cfg.L2URL, "l2", "redis://127.0.0.1:6379", "URL of the shared L2 store (any compiled-in scheme: redis://, nats://, mem://NAME, ...)")
	flag.StringVar(&cfg.BackplaneURL, "backplane", "redis://127.0.0.1:6379", "URL of the backplane (redis://, nats://, amqp://, mem://NAME, ...)")
	flag.StringVar(&cfg.OTLP, "otlp", "127.0.0.1:4317", `OTLP endpoint: host:port for gRPC, http://host:port for HTTP; "" to export nothing`)
	flag.StringVar(&cfg.MetricsAddr, "metrics-addr", "127.0.0.1:9464", `address of the Prometheus /metrics endpoint; "" for none`)
	flag.BoolVar(&cfg.Serve, "serve", false, "keep serving /metrics after the scenario, until interrupted")
	flag.StringVar(&cfg.Service, "service", "strata-example", `service name prefix: the nodes are PREFIX-a and PREFIX-b`)
	jaegerAPI := flag.String("jaeger-api", "http://127.0.0.1:16686", "Jaeger's query API, read by -waterfall")
	waterfall := flag.String("waterfall", "", "directory to write the update step's cross-node trace to, as trace.svg and trace.png, drawn from what -jaeger-api returns")
	verbose := flag.Bool("v", false, "log the caches' debug messages")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Fail clearly instead of hanging if a server never answers.
	if !cfg.Serve {
		time.AfterFunc(2*time.Minute, func() {
			fmt.Fprintln(os.Stderr, "jaeger: FAILED: still running after 2 minutes")
			os.Exit(1)
		})
	}
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jaeger:", err)
		os.Exit(1)
	}
	if *waterfall != "" {
		if err := writeWaterfall(ctx, *jaegerAPI, res, *waterfall, cfg.Out); err != nil {
			fmt.Fprintln(os.Stderr, "jaeger: -waterfall:", err)
			os.Exit(1)
		}
	}
}
