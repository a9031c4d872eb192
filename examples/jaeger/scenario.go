package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/otel/strataotel"

	// Imported for their URL schemes: mem://, redis://, rediss://,
	// nats://, amqp://, amqps://.
	_ "github.com/stratacache/strata/backplane/membackplane"
	_ "github.com/stratacache/strata/backplane/natsbackplane"
	_ "github.com/stratacache/strata/backplane/rabbitbackplane"
	_ "github.com/stratacache/strata/backplane/redisbackplane"
	_ "github.com/stratacache/strata/l2/meml2"
	_ "github.com/stratacache/strata/l2/natskvl2"
	_ "github.com/stratacache/strata/l2/redisl2"
)

// config is what the flags set.
type config struct {
	L2URL, BackplaneURL string
	// OTLP is host:port (gRPC) or http(s)://host:port (HTTP); "" exports
	// nothing.
	OTLP string
	// MetricsAddr is where /metrics is served; "" for nowhere.
	MetricsAddr string
	Serve       bool
	// Service prefixes the nodes' service names (PREFIX-a, PREFIX-b).
	Service string
	Out     io.Writer
	Logger  *slog.Logger
	// exporter, if set, replaces the OTLP exporter (tests).
	exporter func(node string) sdktrace.SpanExporter
}

// Result says what the scenario did, for the caller to find it in Jaeger.
type Result struct {
	// Services are the service names of nodes A and B.
	Services [2]string
	Steps    []Step
	// MetricsURL is the /metrics endpoint served during the run ("" if
	// none).
	MetricsURL string
}

// Step is one traced request of the scenario.
type Step struct {
	Name    string // short name, such as "update"
	Node    string // "A" or "B"
	Request string // the request span's name
	TraceID string // hex
}

// Step returns the step named name.
func (r *Result) Step(name string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

const (
	cacheName  = "users"
	profileKey = "user:42"
	tenantTag  = "tenant:7"
)

// profileOpts: fresh for a minute, kept ten minutes for fail-safe (a stale
// value fail-safe served is reused for 5 s before the database is tried
// again). Each run uses its own keys (Options.KeyPrefix), which L2 forgets
// after ten minutes.
var profileOpts = []core.EntryOption{
	core.WithDuration(time.Minute),
	core.WithFailSafe(10*time.Minute, 5*time.Second),
	core.WithTags(tenantTag),
}

// Profile is the cached value.
type Profile struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Version int    `json:"version"`
}

// database stands for the source of truth: a little latency, and a switch
// to take it down.
type database struct {
	mu      sync.Mutex
	profile Profile
	down    atomic.Bool
}

var errDatabaseDown = errors.New("database: connection refused")

func (db *database) get(ctx context.Context, tracer trace.Tracer) (Profile, error) {
	_, span := tracer.Start(ctx, "SELECT users", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", "SELECT")))
	defer span.End()
	time.Sleep(15 * time.Millisecond)
	if db.down.Load() {
		span.SetStatus(codes.Error, errDatabaseDown.Error())
		span.SetAttributes(attribute.String("error.type", "connection_refused"))
		return Profile{}, errDatabaseDown
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.profile, nil
}

func (db *database) update(email string) Profile {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.profile.Email = email
	db.profile.Version++
	return db.profile
}

// node is one cache with its own tracer provider (its own service name in
// Jaeger), L2 handle and backplane connection, as a separate process would
// have.
type node struct {
	name    string
	service string
	cache   *core.Cache
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	obs     *strataotel.Observer
	reg     metric.Registration
	store   l2.Store
	bp      backplane.Backplane
	db      *database
	// exp counts the spans exported and the exports that failed.
	exp *countingExporter
}

// countingExporter wraps a span exporter and remembers what it could not
// export: the batch span processor exports in the background and only logs
// a failure, so without it a run whose collector never answered would
// report success.
type countingExporter struct {
	sdktrace.SpanExporter
	mu       sync.Mutex
	exported int
	failed   int
	lastErr  error
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.failed += len(spans)
		e.lastErr = err
	} else {
		e.exported += len(spans)
	}
	return err
}

// result returns the number of spans exported, and an error naming the
// number that were not and the last export error.
func (e *countingExporter) result() (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed > 0 {
		return e.exported, fmt.Errorf("%d of %d spans not exported: %w", e.failed, e.failed+e.exported, e.lastErr)
	}
	return e.exported, nil
}

func (n *node) load(ctx context.Context, _ *core.FactoryContext[Profile]) (Profile, error) {
	return n.db.get(ctx, n.tracer)
}

func (n *node) read(ctx context.Context) (Profile, error) {
	return core.GetOrSet(ctx, n.cache, profileKey, n.load, profileOpts...)
}

// close closes the cache, then what it used (core never closes what it was
// given), then flushes and stops the tracer provider.
func (n *node) close(ctx context.Context) error {
	errs := []error{n.cache.Close()}
	if n.reg != nil {
		errs = append(errs, n.reg.Unregister())
	}
	errs = append(errs, n.obs.Shutdown())
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.bp != nil {
		errs = append(errs, n.bp.Close())
	}
	errs = append(errs, n.tp.Shutdown(ctx))
	return errors.Join(errs...)
}

// nodeMeterProvider gives every meter a strata.node scope attribute, so two
// nodes of one cache in one process report distinct series (the Prometheus
// exporter turns it into the otel_scope_strata_node label).
type nodeMeterProvider struct {
	metric.MeterProvider
	node string
}

func (p nodeMeterProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	opts = append(opts, metric.WithInstrumentationAttributes(attribute.String("strata.node", p.node)))
	return p.MeterProvider.Meter(name, opts...)
}

// newExporter returns an OTLP span exporter for endpoint: gRPC for
// host:port, HTTP for an http:// or https:// URL.
func newExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("-otlp %q: %w", endpoint, err)
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if u.Path != "" && u.Path != "/" {
			opts = append(opts, otlptracehttp.WithURLPath(u.Path))
		}
		opts = append(opts, otlptracehttp.WithTimeout(exportTimeout), otlptracehttp.WithRetry(otlptracehttp.RetryConfig(exportRetry)))
		return otlptracehttp.New(ctx, opts...)
	}
	return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithTimeout(exportTimeout), otlptracegrpc.WithRetry(exportRetry))
}

// exportTimeout and exportRetry bound one export, retries included: a
// collector on the same machine answers in milliseconds, and one that does
// not answer should fail the run in seconds, not after the exporter's
// default minute of retries per batch.
const exportTimeout = 3 * time.Second

var exportRetry = otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 2 * time.Second}

// discard is a span exporter that drops everything (-otlp "").
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func openNode(ctx context.Context, cfg config, name, runID string, mp metric.MeterProvider, db *database) (*node, error) {
	n := &node{name: name, service: cfg.Service + "-" + strings.ToLower(name), db: db}
	var exp sdktrace.SpanExporter = discard{}
	switch {
	case cfg.exporter != nil:
		exp = cfg.exporter(name)
	case cfg.OTLP != "":
		var err error
		if exp, err = newExporter(ctx, cfg.OTLP); err != nil {
			return nil, err
		}
	}
	n.exp = &countingExporter{SpanExporter: exp}
	instance := "node-" + strings.ToLower(name) + "-" + runID
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(n.service), semconv.ServiceInstanceID(instance))
	n.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(n.exp, sdktrace.WithBatchTimeout(200*time.Millisecond)))
	n.tracer = n.tp.Tracer("github.com/stratacache/strata/examples/jaeger")
	nmp := nodeMeterProvider{MeterProvider: mp, node: name}
	n.obs = strataotel.New(strataotel.WithTracerProvider(n.tp), strataotel.WithMeterProvider(nmp),
		strataotel.WithPropagators(propagation.TraceContext{}))
	fail := func(err error) (*node, error) {
		if n.store != nil {
			n.store.Close()
		}
		if n.bp != nil {
			n.bp.Close()
		}
		n.obs.Shutdown()
		n.tp.Shutdown(ctx)
		return nil, err
	}
	var err error
	if cfg.L2URL != "" {
		if n.store, err = l2.Open(ctx, cfg.L2URL); err != nil {
			return fail(fmt.Errorf("node %s: -l2: %w", name, err))
		}
	}
	if n.bp, err = backplane.Open(ctx, cfg.BackplaneURL); err != nil {
		return fail(fmt.Errorf("node %s: -backplane: %w", name, err))
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n.cache, err = core.New(core.Options{
		Name:       cacheName,
		InstanceID: instance,
		// Keys of this run only: Redis keeps the last run's entries.
		KeyPrefix: "strata-example:" + runID + ":",
		L2:        n.store,
		Backplane: n.bp,
		Logger:    logger.With("node", name),
		Observers: []core.Observer{n.obs},
	})
	if err != nil {
		return fail(err)
	}
	if n.reg, err = strataotel.RegisterCacheMetrics(n.cache, nmp); err != nil {
		n.cache.Close()
		return fail(err)
	}
	return n, nil
}

// run plays the scenario and returns the trace IDs of its steps. Everything
// it started is stopped when it returns.
func run(ctx context.Context, cfg config) (res *Result, err error) {
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	if cfg.BackplaneURL == "" {
		return nil, errors.New("-backplane must name a backplane: following a change from node to node is what this example shows")
	}
	if cfg.Service == "" {
		cfg.Service = "strata-example"
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	runID := hex.EncodeToString(id[:])
	res = &Result{Services: [2]string{cfg.Service + "-a", cfg.Service + "-b"}}

	// Metrics: one meter provider, read by the Prometheus exporter into a
	// registry of its own, served on /metrics.
	reg := prometheus.NewRegistry()
	pexp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(pexp),
		sdkmetric.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(cfg.Service))))
	defer func() { err = errors.Join(err, mp.Shutdown(context.Background())) }()
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("-metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		served := make(chan struct{})
		go func() { defer close(served); srv.Serve(ln) }()
		defer func() {
			srv.Shutdown(context.Background())
			<-served
		}()
		res.MetricsURL = "http://" + ln.Addr().String() + "/metrics"
	}

	db := &database{profile: Profile{ID: 42, Name: "Ada Lovelace", Email: "ada@example.com", Version: 1}}
	a, err := openNode(ctx, cfg, "A", runID, mp, db)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, a.close(context.Background())) }()
	b, err := openNode(ctx, cfg, "B", runID, mp, db)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.close(context.Background())) }()

	fmt.Fprintf(out, "Two nodes of cache %q: A (service %s) and B (service %s)\n", cacheName, a.service, b.service)
	fmt.Fprintf(out, "   L2: %s   backplane: %s   traces: %s\n", orNone(redact(cfg.L2URL)), redact(cfg.BackplaneURL), orNone(cfg.OTLP))
	if strings.HasPrefix(cfg.L2URL, "mem://") || strings.HasPrefix(cfg.BackplaneURL, "mem://") {
		fmt.Fprintln(out, "   (mem:// adapters: both nodes share in-process stores; pass redis:// URLs for real ones)")
	}
	if res.MetricsURL != "" {
		fmt.Fprintf(out, "   metrics: %s\n", res.MetricsURL)
	}
	for _, n := range []*node{a, b} {
		if err := waitFor(ctx, "node "+n.name+"'s backplane subscription", func() bool { return !n.cache.Stats().Disconnected }); err != nil {
			return nil, err
		}
	}

	sc := &scenario{out: out, res: res, a: a, b: b, db: db}
	if err := sc.play(ctx); err != nil {
		return res, err
	}
	// Every span ended so far is exported now, so that a collector that
	// did not take them fails the run (exit status 1) instead of being
	// reported as a success.
	var exportErrs []error
	exported := 0
	for _, n := range []*node{a, b} {
		flushErr := n.tp.ForceFlush(ctx)
		k, err := n.exp.result()
		exported += k
		if err = cmp.Or(err, flushErr); err != nil {
			exportErrs = append(exportErrs, fmt.Errorf("node %s: %w", n.name, err))
		}
	}
	if cfg.OTLP != "" && cfg.exporter == nil {
		if len(exportErrs) > 0 {
			return res, fmt.Errorf("traces not exported to %s (is Jaeger running? scripts/jaeger.sh starts one): %w", cfg.OTLP, errors.Join(exportErrs...))
		}
		fmt.Fprintf(out, "\nTraces exported to %s (%d spans). In Jaeger: http://127.0.0.1:16686/search?service=%s\n", cfg.OTLP, exported, a.service)
	} else if len(exportErrs) > 0 {
		return res, errors.Join(exportErrs...)
	}
	if hook != nil {
		hook(res)
	}
	if cfg.Serve && res.MetricsURL != "" {
		fmt.Fprintf(out, "Serving %s until interrupted.\n", res.MetricsURL)
		<-ctx.Done()
	}
	return res, nil
}

// hook, if set, is called after the scenario while everything is still up
// (tests).
var hook func(*Result)

// scenario is the sequence of traced requests.
type scenario struct {
	out  io.Writer
	res  *Result
	a, b *node
	db   *database
}

// request runs fn inside a server span named name on node n, as an
// instrumented HTTP handler would, and prints the trace ID.
func (s *scenario) request(ctx context.Context, step string, n *node, name string, fn func(ctx context.Context) (string, error)) error {
	ctx, span := n.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("strata.example.step", step)))
	what, err := fn(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	tid := span.SpanContext().TraceID().String()
	s.res.Steps = append(s.res.Steps, Step{Name: step, Node: n.name, Request: name, TraceID: tid})
	fmt.Fprintf(s.out, "%-12s %s  %-22s trace %s\n", step, n.name, name, tid)
	if what != "" {
		fmt.Fprintf(s.out, "%14s%s\n", "", what)
	}
	if err != nil {
		return fmt.Errorf("step %s: %w", step, err)
	}
	return nil
}

// received waits until n has applied one more backplane message than
// before.
func received(ctx context.Context, n *node, before uint64) error {
	return waitFor(ctx, "node "+n.name+" to receive the change", func() bool { return n.cache.Stats().BackplaneReceived > before })
}

func (s *scenario) play(ctx context.Context) error {
	a, b := s.a, s.b
	fmt.Fprintln(s.out, "\nstep        node request                trace")
	steps := []func() error{
		func() error {
			before := b.cache.Stats().BackplaneReceived
			err := s.request(ctx, "miss", a, "GET /users/42", func(ctx context.Context) (string, error) {
				p, err := a.read(ctx)
				return fmt.Sprintf("L1 and L2 miss: the factory read v%d from the database, wrote L2, published \"set\"", p.Version), err
			})
			if err != nil {
				return err
			}
			return received(ctx, b, before)
		},
		func() error {
			return s.request(ctx, "l2-hit", b, "GET /users/42", func(ctx context.Context) (string, error) {
				p, err := b.read(ctx)
				return fmt.Sprintf("L1 miss, L2 hit: v%d, no database call", p.Version), err
			})
		},
		func() error {
			return s.request(ctx, "l1-hit", b, "GET /users/42", func(ctx context.Context) (string, error) {
				p, err := b.read(ctx)
				return fmt.Sprintf("L1 hit: v%d (traced because the request is sampled; otherwise only counted)", p.Version), err
			})
		},
		func() error {
			before := b.cache.Stats().BackplaneReceived
			err := s.request(ctx, "update", a, "PUT /users/42", func(ctx context.Context) (string, error) {
				p := s.db.update("ada@analytical-engine.org")
				return fmt.Sprintf("saved v%d, then core.Set: L1, L2, publish \"set\"; B's receive span links to A's set span", p.Version),
					core.Set(ctx, a.cache, profileKey, p, profileOpts...)
			})
			if err != nil {
				return err
			}
			return received(ctx, b, before)
		},
		func() error {
			return s.request(ctx, "read-new", b, "GET /users/42", func(ctx context.Context) (string, error) {
				p, err := b.read(ctx)
				if err == nil && p.Version != 2 {
					err = fmt.Errorf("B read v%d after the update, want v2", p.Version)
				}
				return fmt.Sprintf("the message made B drop its copy: v%d from L2", p.Version), err
			})
		},
		func() error {
			before := a.cache.Stats().BackplaneReceived
			err := s.request(ctx, "invalidate", b, "POST /users/42/expire", func(ctx context.Context) (string, error) {
				return "Expire on B: L2 delete, publish \"expire\"; A keeps a stale copy for fail-safe", b.cache.Expire(ctx, profileKey)
			})
			if err != nil {
				return err
			}
			return received(ctx, a, before)
		},
		func() error {
			s.db.down.Store(true)
			defer s.db.down.Store(false)
			return s.request(ctx, "fail-safe", a, "GET /users/42", func(ctx context.Context) (string, error) {
				p, err := a.read(ctx)
				if err == nil && p.Version != 2 {
					err = fmt.Errorf("A read v%d with the database down, want the stale v2", p.Version)
				}
				return fmt.Sprintf("database down: the factory failed and fail-safe served the stale v%d", p.Version), err
			})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls cond for up to 10 s.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
