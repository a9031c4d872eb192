// Command profileapi is a user-profile HTTP service cached with strata: the
// scenario strata exists for. Each instance keeps profiles in memory (L1);
// the instances share an L2 and a backplane, so that when one instance
// updates a profile — revokes a permission, turns off a feature flag — the
// others stop serving their old copy at once instead of when it expires.
//
//	GET  /profile/{id}   the profile as JSON, which instance answered, and
//	                     where the value came from (l1, l2 or database)
//	POST /profile/{id}   update it: a JSON body with any of name, email,
//	                     role, can_delete_orders, beta_checkout
//	GET  /healthz        backplane connection and the cache's counters
//
// Profiles live in PostgreSQL (-database-url, DATABASE_URL) or, in a binary
// built with -tags sqlite, in a SQLite file (pure Go, no cgo) when no URL is
// given; without either the service refuses to start and says so. The table
// is created and seeded (profiles 7, 42, 99) if missing. Every flag can be
// set by the environment variable in brackets:
//
//	-addr        [ADDR]                 listen address (127.0.0.1:8080)
//	-database-url [DATABASE_URL]        postgres://... (none: SQLite, if built in)
//	-sqlite      [SQLITE_PATH]          SQLite file without -database-url, with -tags sqlite only (profiles.db)
//	-table       [PROFILES_TABLE]       table name (profiles)
//	-l2          [CACHE_L2_URL]         shared L2: redis://, nats://, mem://NAME, none
//	-backplane   [CACHE_BACKPLANE_URL]  backplane: redis://, nats://, amqp://, mem://NAME, none
//	-cache-name  [CACHE_NAME]           cache name, the same on every instance (profiles)
//	-key-prefix  [CACHE_KEY_PREFIX]     L2 key prefix (profileapi:)
//	-duration    [CACHE_DURATION]       how long a profile is fresh (5m)
//	-cdc         [CACHE_CDC]            on: also invalidate from PostgreSQL's change log (cdc.go, demo-cdc.sh)
//	-cdc-slot    [CDC_SLOT]             the replication slot of -cdc
//	-instance    [INSTANCE]             name in responses and logs (host:port)
//
// L2 and backplane default to the in-process mem:// adapters, so the service
// needs no server other than its database; each process is then alone: an
// update is not seen by instances in other processes (the log says so).
// Three instances kept in sync through Redis, sharing the local PostgreSQL,
// on one machine (then -addr 127.0.0.1:8082 and 127.0.0.1:8083):
//
//	export DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//	CACHE_L2_URL=redis://127.0.0.1:6379 CACHE_BACKPLANE_URL=redis://127.0.0.1:6379 \
//	    go run ./examples/profileapi -addr 127.0.0.1:8081
//
// or, with a SQLite file instead:
//
//	CACHE_L2_URL=redis://127.0.0.1:6379 CACHE_BACKPLANE_URL=redis://127.0.0.1:6379 \
//	    go run -tags sqlite ./examples/profileapi -sqlite /tmp/profiles.db -addr 127.0.0.1:8081
//
// or run examples/profileapi/demo.sh, which starts three, updates a profile
// on one and checks what the other two serve. With
// OTEL_EXPORTER_OTLP_ENDPOINT set (for example http://127.0.0.1:4317, a
// Jaeger's OTLP gRPC port) the requests, database queries and cache
// operations are traced; OTEL_SERVICE_NAME names the service (profileapi).
// SIGINT or SIGTERM stops it gracefully: in-flight requests finish, then the
// cache, the L2 store, the backplane and the database are closed.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

func main() {
	cfg := config{}
	addr := flag.String("addr", env("ADDR", "127.0.0.1:8080"), "listen address [ADDR]")
	flag.StringVar(&cfg.SQLitePath, "sqlite", env("SQLITE_PATH", "profiles.db"), "SQLite file, created if missing, used without -database-url; needs a build with -tags sqlite [SQLITE_PATH]")
	flag.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (postgres://...); empty: the SQLite file of -sqlite, in a build with -tags sqlite [DATABASE_URL]")
	flag.StringVar(&cfg.Table, "table", env("PROFILES_TABLE", "profiles"), "profiles table, created and seeded if missing [PROFILES_TABLE]")
	flag.StringVar(&cfg.L2URL, "l2", env("CACHE_L2_URL", "mem://profileapi"), `shared L2 URL, or "none" [CACHE_L2_URL]`)
	flag.StringVar(&cfg.BackplaneURL, "backplane", env("CACHE_BACKPLANE_URL", "mem://profileapi"), `backplane URL, or "none" [CACHE_BACKPLANE_URL]`)
	flag.StringVar(&cfg.CacheName, "cache-name", env("CACHE_NAME", "profiles"), "cache name, the same on every instance [CACHE_NAME]")
	flag.StringVar(&cfg.KeyPrefix, "key-prefix", env("CACHE_KEY_PREFIX", "profileapi:"), "prefix of the L2 keys [CACHE_KEY_PREFIX]")
	duration := flag.String("duration", env("CACHE_DURATION", "5m"), "how long a cached profile is fresh [CACHE_DURATION]")
	flag.StringVar(&cfg.Instance, "instance", os.Getenv("INSTANCE"), "instance name in responses and logs; default host:port [INSTANCE]")
	verbose := flag.Bool("v", false, "debug logs, including the cache's")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(cfg, *addr, *duration, log); err != nil {
		log.Error("profileapi stopped", "err", err)
		os.Exit(1)
	}
}

// env returns the environment variable name, or def when it is unset or
// empty.
func env(name, def string) string { return cmp.Or(os.Getenv(name), def) }

// serve runs the service until SIGINT or SIGTERM.
func serve(cfg config, addr, duration string, log *slog.Logger) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Duration, err = time.ParseDuration(duration); err != nil || cfg.Duration <= 0 {
		return fmt.Errorf("-duration %q: want a positive duration such as 5m", duration)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.Instance = host + ":" + port
	}
	log = log.With("instance", cfg.Instance)
	cfg.Logger = log

	if endpoint := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); endpoint != "" {
		tp, err := tracerProvider(ctx, cfg.Instance)
		if err != nil {
			return fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT=%s: %w", endpoint, err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = errors.Join(err, tp.Shutdown(sctx))
		}()
		cfg.Tracer = tp.Tracer("github.com/stratacache/strata/examples/profileapi")
		obs := strataotel.New(strataotel.WithTracerProvider(tp), strataotel.WithPropagators(propagation.TraceContext{}))
		defer obs.Shutdown()
		cfg.Observers = []core.Observer{obs}
		log.Info("tracing to OTLP over gRPC", "endpoint", endpoint)
	}

	a, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.Close()) }()
	stopCDC, err := startCDC(ctx, cfg, a) // cdc.go: with -cdc only
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopCDC()) }()

	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", "http://"+ln.Addr().String(), "database", a.db.describe(cfg.DatabaseURL, cfg.SQLitePath))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// tracerProvider exports spans with the OTLP gRPC exporter, which reads
// OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_EXPORTER_OTLP_* variables
// itself.
func tracerProvider(ctx context.Context, instance string) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	// The default service name first, so OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override it.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("profileapi"), semconv.ServiceInstanceID(instance)),
		resource.WithFromEnv())
	if err != nil {
		return nil, err
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
