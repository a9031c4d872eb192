package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/pgtest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/otel/strataotel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// instance is one app behind a real HTTP server on 127.0.0.1.
type instance struct {
	name string
	url  string
	app  *app
}

// startInstances starts n instances of the service with cfg (each its own
// cache, L2 handle, backplane connection and database handle, as separate
// processes would have), closed when the test ends. Without a database in
// cfg they share a table of the test's own in the shared PostgreSQL
// (pgtest.SharedURL: skipped when it is down, failed when CI=true), dropped
// when the test ends.
func startInstances(t *testing.T, n int, cfg config) []*instance {
	t.Helper()
	if cfg.SQLitePath == "" && cfg.DatabaseURL == "" {
		cfg.DatabaseURL = pgtest.SharedURL(t)
		cfg.Table = pgtest.Table(t, cfg.DatabaseURL, "profileapi_test")
	}
	cfg.Table = cmpOr(cfg.Table, "profiles")
	cfg.CacheName = cmpOr(cfg.CacheName, "profileapi-test-"+redistest.Unique())
	cfg.KeyPrefix = cmpOr(cfg.KeyPrefix, redistest.Prefix())
	if cfg.Duration == 0 {
		cfg.Duration = 5 * time.Minute
	}
	var out []*instance
	for i := range n {
		c := cfg
		c.Instance = fmt.Sprintf("instance-%d", i+1)
		a, err := newApp(context.Background(), c)
		if err != nil {
			t.Fatalf("newApp %s: %v", c.Instance, err)
		}
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(func() {
			srv.Close()
			if err := a.Close(); err != nil {
				t.Errorf("Close %s: %v", c.Instance, err)
			}
		})
		out = append(out, &instance{name: c.Instance, url: srv.URL, app: a})
	}
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// get does GET /profile/{id} and decodes the answer.
func (in *instance) get(t *testing.T, id int64) (profileResponse, int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/profile/%d", in.url, id))
	if err != nil {
		t.Fatalf("GET on %s: %v", in.name, err)
	}
	return decode[profileResponse](t, resp)
}

// post does POST /profile/{id} with body.
func (in *instance) post(t *testing.T, id int64, body string) (profileResponse, int) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/profile/%d", in.url, id), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST on %s: %v", in.name, err)
	}
	return decode[profileResponse](t, resp)
}

func decode[T any](t *testing.T, resp *http.Response) (T, int) {
	t.Helper()
	defer resp.Body.Close()
	var v T
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v, resp.StatusCode
}

// expectRead reads profile 42 on in and checks the source and the
// can_delete_orders permission.
func expectRead(t *testing.T, in *instance, source string, canDelete bool) {
	t.Helper()
	r, status := in.get(t, 42)
	if status != http.StatusOK || r.Profile == nil {
		t.Fatalf("%s: status %d, profile %v", in.name, status, r.Profile)
	}
	if r.Source != source || r.Profile.CanDeleteOrders != canDelete || r.Instance != in.name {
		t.Fatalf("%s answered from %q (instance %q) can_delete_orders=%v, want from %q can_delete_orders=%v; stats %+v",
			in.name, r.Source, r.Instance, r.Profile.CanDeleteOrders, source, canDelete, in.app.cache.Stats())
	}
	if r.Cached != (source != "database") {
		t.Errorf("%s: cached=%v for source %q", in.name, r.Cached, source)
	}
}

// checkUpdateSeen plays the demo: every instance caches profile 42, the
// first revokes its permission, and the others must serve the new value.
// Through L2 the others find the first's value and then the update there;
// without L2 they query the database.
func checkUpdateSeen(t *testing.T, nodes []*instance, withL2 bool) {
	t.Helper()
	shared := "database"
	if withL2 {
		shared = "l2"
	}
	expectRead(t, nodes[0], "database", true)
	for _, n := range nodes[1:] {
		expectRead(t, n, shared, true)
	}
	for _, n := range nodes {
		expectCachedInL1(t, n, shared, true)
	}

	r, status := nodes[0].post(t, 42, `{"can_delete_orders": false, "role": "viewer"}`)
	if status != http.StatusOK || r.Profile == nil || r.Profile.CanDeleteOrders || r.Profile.Role != "viewer" || r.Profile.Version != 2 {
		t.Fatalf("update: status %d, %+v", status, r.Profile)
	}
	expectRead(t, nodes[0], "l1", false)

	// The others hear of the update within the backplane's delivery time:
	// poll (generously bounded) until they drop their old copy.
	for _, n := range nodes[1:] {
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, status := n.get(t, 42)
			if status != http.StatusOK || r.Profile == nil {
				t.Fatalf("%s: status %d", n.name, status)
			}
			if !r.Profile.CanDeleteOrders {
				if r.Source != shared || r.Profile.Version != 2 || r.Profile.Role != "viewer" {
					t.Fatalf("%s: new value from %q (want %q): %+v", n.name, r.Source, shared, r.Profile)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still serves the revoked permission (from %s) 5s after the update", n.name, r.Source)
			}
			time.Sleep(5 * time.Millisecond)
		}
		expectCachedInL1(t, n, shared, false)
	}
}

// expectCachedInL1 reads profile 42 on in until it comes from in's L1,
// checking can_delete_orders on every answer. The first read after one
// from L2 may come from L2 again: a backplane message about the key that
// arrives while a read of it is under way keeps that read's value out of
// L1 (core caches nothing a concurrent change may have superseded), and
// the other instances' messages arrive when they arrive.
func expectCachedInL1(t *testing.T, in *instance, shared string, canDelete bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, status := in.get(t, 42)
		if status != http.StatusOK || r.Profile == nil || r.Profile.CanDeleteOrders != canDelete {
			t.Fatalf("%s: status %d, %+v; want can_delete_orders=%v", in.name, status, r.Profile, canDelete)
		}
		switch {
		case r.Source == "l1":
			return
		case r.Source != shared:
			t.Fatalf("%s answered from %q, want l1 or %s", in.name, r.Source, shared)
		case time.Now().After(deadline):
			t.Fatalf("%s still reads %s after 5s, never caching it in L1; stats %+v", in.name, shared, in.app.cache.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUpdateSeenByOthersRedis runs three instances over the real Redis as
// L2 and backplane, sharing one PostgreSQL table: the update made on one is
// served by the others.
func TestUpdateSeenByOthersRedis(t *testing.T) {
	u := "redis://" + redistest.Addr(t)
	nodes := startInstances(t, 3, config{L2URL: u, BackplaneURL: u})
	checkUpdateSeen(t, nodes, true)
	for _, n := range nodes {
		if s := n.app.cache.Stats(); s.L2Errors != 0 || s.BackplaneErrors != 0 || s.Disconnected {
			t.Errorf("%s: %+v", n.name, s)
		}
	}
}

// TestUpdateSeenByOthersInProcess runs three instances with the default
// in-process adapters (mem://), which one process's instances share.
func TestUpdateSeenByOthersInProcess(t *testing.T) {
	u := "mem://profileapi-" + redistest.Unique()
	checkUpdateSeen(t, startInstances(t, 3, config{L2URL: u, BackplaneURL: u}), true)
}

// TestUpdateSeenByOthersBackplaneOnly runs the instances with a backplane
// and no L2: the others reload the updated profile from the database.
func TestUpdateSeenByOthersBackplaneOnly(t *testing.T) {
	u := "mem://profileapi-" + redistest.Unique()
	checkUpdateSeen(t, startInstances(t, 3, config{L2URL: "none", BackplaneURL: u}), false)
}

// TestWithoutBackplaneOthersServeOldPermission is the problem the backplane
// solves: with a shared L2 but no backplane, an instance that cached the
// profile keeps granting the revoked permission.
func TestWithoutBackplaneOthersServeOldPermission(t *testing.T) {
	nodes := startInstances(t, 2, config{L2URL: "mem://profileapi-" + redistest.Unique(), BackplaneURL: "none"})
	expectRead(t, nodes[0], "database", true)
	expectRead(t, nodes[1], "l2", true)
	if _, status := nodes[0].post(t, 42, `{"can_delete_orders": false}`); status != http.StatusOK {
		t.Fatalf("update: status %d", status)
	}
	time.Sleep(100 * time.Millisecond) // what a backplane would have needed
	expectRead(t, nodes[1], "l1", true)
	expectRead(t, nodes[0], "l1", false)
}

// TestNoDatabase checks that without a database URL, in a build without
// SQLite (the default), the service refuses to start and names both ways
// out: a PostgreSQL URL, or a build with -tags sqlite.
func TestNoDatabase(t *testing.T) {
	if sqliteBuilt {
		t.Skip("built with -tags sqlite: no URL means the SQLite file (sqlite_test.go)")
	}
	_, err := newApp(context.Background(), config{Table: "profiles", SQLitePath: "profiles.db", L2URL: "none", BackplaneURL: "none"})
	if err == nil {
		t.Fatal("newApp without a database URL: no error")
	}
	for _, want := range []string{"-database-url postgres://", "DATABASE_URL", "-tags sqlite"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestRequests checks the answers to bad and unusual requests.
func TestRequests(t *testing.T) {
	n := startInstances(t, 1, config{L2URL: "none", BackplaneURL: "none"})[0]
	// An unknown profile is a 404, cached (briefly) like any value.
	for _, source := range []string{"database", "l1"} {
		r, status := n.get(t, 1000)
		if status != http.StatusNotFound || r.Profile != nil || r.Source != source {
			t.Errorf("GET unknown: status %d, %+v; want 404 from %s", status, r, source)
		}
	}
	cases := []struct {
		method, path, body string
		status             int
		errPart            string
	}{
		{"GET", "/profile/x", "", 400, "positive integer"},
		{"GET", "/profile/-3", "", 400, "positive integer"},
		{"POST", "/profile/42", `{"role": "god"}`, 400, "role"},
		{"POST", "/profile/42", `{"colour": "red"}`, 400, "unknown field"},
		{"POST", "/profile/42", `{}`, 400, "nothing to change"},
		{"POST", "/profile/42", `{"name": ""}`, 400, "name"},
		{"POST", "/profile/42", `not json`, 400, "body"},
		{"POST", "/profile/1000", `{"role": "admin"}`, 404, "not found"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, n.url+c.path, bytes.NewBufferString(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, status := decode[map[string]string](t, resp)
		if status != c.status || !strings.Contains(body["error"], c.errPart) {
			t.Errorf("%s %s %s: %d %q, want %d and an error about %q", c.method, c.path, c.body, status, body["error"], c.status, c.errPart)
		}
	}
	resp, err := http.Get(n.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	h, status := decode[map[string]any](t, resp)
	if status != 200 || h["instance"] != n.name || h["backplane"] != false {
		t.Errorf("healthz: %d %v", status, h)
	}
}

// TestDatabaseDownServesStale checks the fail-safe settings: once the
// cached profile has expired and the database fails, the last value is
// served, marked stale.
func TestDatabaseDownServesStale(t *testing.T) {
	n := startInstances(t, 1, config{L2URL: "none", BackplaneURL: "none", Duration: 50 * time.Millisecond})[0]
	expectRead(t, n, "database", true)
	time.Sleep(100 * time.Millisecond)
	n.app.db.db.Close() // every query now fails
	r, status := n.get(t, 42)
	if status != http.StatusOK || r.Profile == nil || !r.Stale || r.Source != "l1" || !r.Profile.CanDeleteOrders {
		t.Fatalf("database down: status %d, %+v", status, r)
	}
	// Profile 7 was never cached: nothing to fall back on.
	if _, status := n.get(t, 7); status != http.StatusServiceUnavailable {
		t.Fatalf("database down, nothing cached: status %d, want 503", status)
	}
}

// TestTracing checks that a request is one trace: the request span, the
// cache's operation (strataotel) and the database query inside it.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	obs := strataotel.New(strataotel.WithTracerProvider(tp))
	t.Cleanup(func() {
		obs.Shutdown()
		tp.Shutdown(context.Background())
	})
	n := startInstances(t, 1, config{L2URL: "none", BackplaneURL: "none",
		Tracer: tp.Tracer("test"), Observers: []core.Observer{obs}})[0]
	if _, status := n.get(t, 42); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.Name] = s
	}
	select_ := "SELECT " + n.app.cfg.Table
	req, op, query := spans["GET /profile/{id}"], spans["strata.get_or_set"], spans[select_]
	if !req.SpanContext.IsValid() || !op.SpanContext.IsValid() || !query.SpanContext.IsValid() {
		t.Fatalf("spans %v: want the request, strata.get_or_set and %s", slices.Collect(maps.Keys(spans)), select_)
	}
	if op.Parent.SpanID() != req.SpanContext.SpanID() || query.SpanContext.TraceID() != req.SpanContext.TraceID() {
		t.Errorf("strata.get_or_set is not inside the request's trace, or the query is not")
	}
}
