package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"

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

// config is what flags and environment variables set (see main).
type config struct {
	// Instance names this process in responses and logs.
	Instance string
	// DatabaseURL selects PostgreSQL (postgres://...); empty means the
	// SQLite file at SQLitePath, in a build with -tags sqlite (else
	// newApp fails with errNoDatabase).
	DatabaseURL string
	SQLitePath  string
	// Table is the profiles table (created and seeded if missing).
	Table string
	// L2URL and BackplaneURL are opened with l2.Open and backplane.Open;
	// "none" means without.
	L2URL, BackplaneURL string
	// CacheName must be the same on every instance (it names the
	// backplane channel); KeyPrefix too (it prefixes the L2 keys).
	CacheName, KeyPrefix string
	// Duration is how long a cached profile is fresh.
	Duration time.Duration
	Logger   *slog.Logger
	// Tracer starts the request and database spans; Observers (strataotel)
	// trace the cache. Both optional.
	Tracer    trace.Tracer
	Observers []core.Observer
}

// app is one instance of the service: its database handle, L2 store,
// backplane and cache.
type app struct {
	cfg    config
	log    *slog.Logger
	tracer trace.Tracer
	db     *store
	l2     l2.Store            // nil without L2
	bp     backplane.Backplane // nil without backplane
	cache  *core.Cache
	// readOpts and writeOpts are the entry options of GetOrSet and Set.
	readOpts, writeOpts []core.EntryOption
}

// notFoundDuration is how long "no such profile" is cached: short, so a
// profile created by another service soon shows up.
const notFoundDuration = 10 * time.Second

// newApp opens the database, the L2 store and the backplane named by cfg and
// makes the cache. Close releases them.
func newApp(ctx context.Context, cfg config) (_ *app, err error) {
	a := &app{cfg: cfg, log: cfg.Logger, tracer: cfg.Tracer}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.tracer == nil {
		a.tracer = noop.NewTracerProvider().Tracer("")
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.db, err = openStore(ctx, cfg.DatabaseURL, cfg.SQLitePath, cfg.Table); err != nil {
		return nil, err
	}
	if cfg.L2URL != "none" && cfg.L2URL != "" {
		if a.l2, err = l2.Open(ctx, cfg.L2URL); err != nil {
			return nil, fmt.Errorf("CACHE_L2_URL: %w", err)
		}
	}
	if cfg.BackplaneURL != "none" && cfg.BackplaneURL != "" {
		if a.bp, err = backplane.Open(ctx, cfg.BackplaneURL); err != nil {
			return nil, fmt.Errorf("CACHE_BACKPLANE_URL: %w", err)
		}
	}
	o := core.Options{
		Name:       cfg.CacheName,
		KeyPrefix:  cfg.KeyPrefix,
		InstanceID: "", // random per process run, as it must be
		Logger:     a.log,
		Observers:  append([]core.Observer{sourceRecorder{}}, cfg.Observers...),
		// After an L2 call fails (Redis down, or slower than the 2s hard
		// timeout below), skip L2 for a second instead of making every
		// request wait on a dead server. Short: while it is open, reads
		// go to the database.
		L2CircuitBreakerDuration: time.Second,
	}
	if a.l2 != nil {
		o.L2 = a.l2
	}
	if a.bp != nil {
		o.Backplane = a.bp
	}
	if a.cache, err = core.New(o); err != nil {
		return nil, err
	}

	// The options of a real service, chosen so that load does not turn
	// into database reloads and stale answers:
	//   - fresh for Duration; kept an hour so that while the database is
	//     down the last known profile is served (fail-safe), retrying the
	//     database every 10s;
	//   - L2 calls bounded by a hard timeout of 2s and no soft timeout: a
	//     Redis slowed by a busy machine is waited for, not counted as a
	//     failure (a 100ms soft timeout made every such read a database
	//     reload, and opened the breaker);
	//   - a slow query makes the caller wait at most 1s when fail-safe has
	//     a stale value to serve, 5s otherwise;
	//   - hot profiles refreshed in the background after 90% of Duration.
	a.writeOpts = []core.EntryOption{
		core.WithDuration(cfg.Duration),
		core.WithFailSafe(time.Hour, 10*time.Second),
		core.WithL2Timeouts(0, 2*time.Second),
	}
	a.readOpts = slices.Concat(a.writeOpts, []core.EntryOption{
		core.WithFactoryTimeouts(time.Second, 5*time.Second),
		core.WithEagerRefresh(0.9),
	})
	if a.l2 == nil && a.bp != nil {
		// Without L2, announcing a value just loaded from the database
		// would make every other instance drop its copy and load it
		// again: only updates are announced.
		a.readOpts = append(a.readOpts, core.WithSkipBackplane())
	}

	switch {
	case a.l2 == nil && a.bp == nil:
		a.log.Warn("no L2 and no backplane: this instance caches alone and never hears of updates made elsewhere")
	case isMem(cfg.L2URL) || isMem(cfg.BackplaneURL):
		a.log.Warn("in-process (mem://) L2 or backplane: this instance shares them only with caches of the same process; "+
			"instances in other processes will not see its updates: set CACHE_L2_URL and CACHE_BACKPLANE_URL, e.g. redis://127.0.0.1:6379",
			"l2", orNone(redact(cfg.L2URL)), "backplane", orNone(redact(cfg.BackplaneURL)))
	case a.bp == nil:
		a.log.Warn("no backplane: other instances keep serving their cached copy of a profile updated here until it expires",
			"duration", cfg.Duration)
	}
	if a.bp != nil {
		// Answer no request before the backplane subscription is live:
		// until then this instance would not hear of the others' updates.
		rctx, cancel := context.WithTimeout(ctx, readyTimeout)
		err := a.cache.Ready(rctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("backplane %s not subscribed within %v: %w", redact(cfg.BackplaneURL), readyTimeout, err)
		}
	}
	a.log.Info("cache ready", "cache", cfg.CacheName, "instance_id", a.cache.InstanceID(),
		"l2", orNone(redact(cfg.L2URL)), "backplane", orNone(redact(cfg.BackplaneURL)), "duration", cfg.Duration)
	return a, nil
}

// readyTimeout bounds the wait for the backplane subscription at start.
const readyTimeout = 10 * time.Second

func isMem(u string) bool { return strings.HasPrefix(u, "mem://") }

// redact hides the password of a URL.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

func orNone(s string) string {
	if s == "" || s == "none" {
		return "none"
	}
	return s
}

// Close closes the cache, then what it used: core never closes the L2 store
// or backplane it was given.
func (a *app) Close() error {
	var errs []error
	if a.cache != nil {
		errs = append(errs, a.cache.Close())
	}
	if a.bp != nil {
		errs = append(errs, a.bp.Close())
	}
	if a.l2 != nil {
		errs = append(errs, a.l2.Close())
	}
	if a.db != nil {
		errs = append(errs, a.db.close())
	}
	return errors.Join(errs...)
}

// Handler serves GET and POST /profile/{id} and GET /healthz.
func (a *app) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /profile/{id}", a.getProfile)
	mux.HandleFunc("POST /profile/{id}", a.updateProfile)
	mux.HandleFunc("GET /healthz", a.health)
	return mux
}

// profileResponse is the body of GET and POST /profile/{id}.
type profileResponse struct {
	// Profile is null for an unknown id (status 404).
	Profile *Profile `json:"profile"`
	// Instance is the instance that answered.
	Instance string `json:"instance"`
	// Source is where the value came from: "l1" (this instance's memory),
	// "l2" (the shared cache), "database"; "write" for an update.
	Source string `json:"source"`
	// Cached is true when the database was not queried.
	Cached bool `json:"cached"`
	// Stale is true when fail-safe served an expired value because the
	// database failed or was too slow.
	Stale bool `json:"stale,omitempty"`
}

func key(id int64) string { return "profile:" + strconv.FormatInt(id, 10) }

// load is the factory: a database query. An unknown id is cached too (as
// nil), for a shorter time, so that requests for it do not all reach the
// database.
func (a *app) load(id int64) core.Factory[*Profile] {
	return func(ctx context.Context, fc *core.FactoryContext[*Profile]) (*Profile, error) {
		ctx, span := a.dbSpan(ctx, "SELECT")
		defer span.End()
		p, err := a.db.get(ctx, id)
		switch {
		case errors.Is(err, errNotFound):
			fc.Options.Duration = min(notFoundDuration, fc.Options.Duration)
			return nil, nil
		case err != nil:
			span.SetStatus(codes.Error, err.Error())
			return nil, err
		}
		return &p, nil
	}
}

func (a *app) getProfile(w http.ResponseWriter, r *http.Request) {
	ctx, span, id, ok := a.begin(w, r)
	defer span.End()
	if !ok {
		return
	}
	var src source
	ctx = context.WithValue(ctx, sourceKey{}, &src)
	p, err := core.GetOrSet(ctx, a.cache, key(id), a.load(id), a.readOpts...)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		a.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	resp := profileResponse{Profile: p, Instance: a.cfg.Instance, Source: src.String(), Cached: src.from != core.SourceFactory, Stale: src.stale}
	span.SetAttributes(attribute.String("profile.source", resp.Source))
	status := http.StatusOK
	if p == nil {
		status = http.StatusNotFound
	}
	a.reply(w, status, resp)
}

func (a *app) updateProfile(w http.ResponseWriter, r *http.Request) {
	ctx, span, id, ok := a.begin(w, r)
	defer span.End()
	if !ok {
		return
	}
	var patch ProfilePatch
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&patch); err != nil {
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if err := patch.validate(); err != nil {
		a.fail(w, r, http.StatusBadRequest, err)
		return
	}
	dbCtx, dbSpan := a.dbSpan(ctx, "UPDATE")
	p, err := a.db.update(dbCtx, id, patch)
	dbSpan.End()
	switch {
	case errors.Is(err, errNotFound):
		a.fail(w, r, http.StatusNotFound, err)
		return
	case err != nil:
		span.SetStatus(codes.Error, err.Error())
		a.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	// The database first, then the cache: Set replaces the entry here and
	// in L2 and tells the other instances, which drop their copy and read
	// the new one from L2 on their next request.
	if err := core.Set(ctx, a.cache, key(id), &p, a.writeOpts...); err != nil {
		span.SetStatus(codes.Error, err.Error())
		a.fail(w, r, http.StatusInternalServerError, fmt.Errorf("profile saved, but the cache was not updated: %w", err))
		return
	}
	a.log.InfoContext(ctx, "profile updated", "id", id, "version", p.Version, "role", p.Role,
		"can_delete_orders", p.CanDeleteOrders, "beta_checkout", p.BetaCheckout)
	a.reply(w, http.StatusOK, profileResponse{Profile: &p, Instance: a.cfg.Instance, Source: "write"})
}

// health reports whether the instance can hear the others, with the cache's
// counters.
func (a *app) health(w http.ResponseWriter, r *http.Request) {
	s := a.cache.Stats()
	a.reply(w, http.StatusOK, map[string]any{
		"instance":            a.cfg.Instance,
		"instance_id":         a.cache.InstanceID(),
		"cache":               a.cfg.CacheName,
		"l2":                  a.l2 != nil,
		"backplane":           a.bp != nil,
		"backplane_connected": a.bp != nil && !s.Disconnected,
		"l1_entries":          a.cache.Len(),
		"stats":               s,
	})
}

// begin starts the request's server span and parses its profile id; when
// the id is bad it has answered 400 and ok is false. The caller ends span.
func (a *app) begin(w http.ResponseWriter, r *http.Request) (ctx context.Context, span trace.Span, id int64, ok bool) {
	ctx, span = a.tracer.Start(r.Context(), r.Method+" /profile/{id}", trace.WithSpanKind(trace.SpanKindServer))
	id, ok = a.profileID(w, r)
	return ctx, span, id, ok
}

// dbSpan starts the span of a query (verb is SELECT, UPDATE...).
func (a *app) dbSpan(ctx context.Context, verb string) (context.Context, trace.Span) {
	return a.tracer.Start(ctx, verb+" "+a.cfg.Table, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", a.db.system())))
}

func (a *app) profileID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		a.fail(w, r, http.StatusBadRequest, fmt.Errorf("profile id %q: want a positive integer", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func (a *app) reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}

func (a *app) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		a.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	a.reply(w, status, map[string]string{"error": err.Error(), "instance": a.cfg.Instance})
}

// source is where one GetOrSet found its value, as sourceRecorder saw it.
type source struct {
	from  core.Source
	stale bool
}

func (s source) String() string {
	if s.from == core.SourceFactory {
		return "database"
	}
	return s.from.String()
}

type sourceKey struct{}

// sourceRecorder is an observer that writes where a GetOrSet's value came
// from into the *source its caller put in the context.
type sourceRecorder struct{}

func (sourceRecorder) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }
func (sourceRecorder) Event(context.Context, core.Event)                           {}
func (sourceRecorder) OpEnd(ctx context.Context, op *core.OpInfo) {
	if op.Op != core.OpGetOrSet {
		return
	}
	if s, ok := ctx.Value(sourceKey{}).(*source); ok {
		s.from, s.stale = op.Source, op.Stale || op.FailSafe
	}
}
