package pgcdc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/pgtest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/invalidation/pgcdc"
	"github.com/stratacache/strata/l2/redisl2"
)

// One private PostgreSQL (wal_level=logical) serves the package's tests,
// started by the first test that needs it; each test has its own table,
// publication and slot.
var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	code := m.Run()
	if pgSrv != nil {
		if err := pgSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// server returns the package's PostgreSQL, starting it if needed; skipped
// without PostgreSQL binaries, failed when $CI is "true".
func server(t testing.TB) *pgtest.Server {
	t.Helper()
	if _, err := pgtest.BinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v, and CI=true forbids skipping", err)
		}
		t.Skipf("skipping: %v", err)
	}
	pgOnce.Do(func() {
		pgSrv, pgErr = pgtest.StartServer(&pgtest.Options{Settings: map[string]string{"max_replication_slots": "30", "max_wal_senders": "30"}})
	})
	if pgErr != nil {
		t.Fatalf("private PostgreSQL: %v", pgErr)
	}
	return pgSrv
}

// fixture is a test's table, publication and slot, and a database
// connection to change the table with.
type fixture struct {
	t     testing.TB
	url   string
	table string
	db    *pgxpool.Pool
	opts  pgcdc.Options
	rules []pgcdc.Rule
	// name and prefix are the cache name and L2 key prefix of the nodes.
	name, prefix string
}

// newFixture makes a table (id, tenant, v) with REPLICA IDENTITY FULL and
// rows ids 1..rows in tenant id%2+1, v "0", its publication and slot
// (through Setup), and the rule: key "p:{id}", tag "tenant:{tenant}",
// TRUNCATE removes the tag "table".
func newFixture(t testing.TB, rows int) *fixture {
	t.Helper()
	srv := server(t)
	u := strings.ToLower(redistest.Unique())
	f := &fixture{t: t, url: srv.URL("postgres"), table: "t_" + u,
		opts: pgcdc.Options{Publication: "pub_" + u, Slot: "slot_" + u, RetryInterval: 200 * time.Millisecond},
		name: "pgcdc-test-" + u, prefix: redistest.Prefix()}
	f.rules = []pgcdc.Rule{{Table: f.table, Keys: []string{"p:{id}"}, Tags: []string{"tenant:{tenant}"}, TruncateTag: "table"}}
	ctx := context.Background()
	var err error
	if f.db, err = pgxpool.New(ctx, f.url); err != nil {
		t.Fatal(err)
	}
	f.exec(`CREATE TABLE ` + f.table + ` (id bigint PRIMARY KEY, tenant int, v text NOT NULL)`)
	f.exec(`ALTER TABLE ` + f.table + ` REPLICA IDENTITY FULL`)
	if rows > 0 {
		f.exec(fmt.Sprintf(`INSERT INTO %s SELECT i, i %% 2 + 1, '0' FROM generate_series(1, %d) i`, f.table, rows))
	}
	if _, err := pgcdc.Setup(ctx, f.url, f.rules, &f.opts); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		// The consumers are stopped by then (cleanups run last first).
		f.dropSlot(f.opts.Slot)
		f.exec(`DROP PUBLICATION IF EXISTS ` + f.opts.Publication)
		f.exec(`DROP TABLE IF EXISTS ` + f.table)
		f.db.Close()
	})
	return f
}

// exec runs a statement in a transaction of its own, failing the test on
// error, and returns when it committed.
func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// receipts records, per key, the backplane messages a node applied.
type receipts struct {
	mu    sync.Mutex
	byKey map[string]int
	total atomic.Int64
}

func (r *receipts) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }
func (r *receipts) Event(context.Context, core.Event)                           {}
func (r *receipts) OpEnd(_ context.Context, op *core.OpInfo) {
	if op.Op != core.OpBackplaneReceive || op.Err != nil {
		return
	}
	r.mu.Lock()
	r.byKey[op.Action+" "+op.Key]++
	r.mu.Unlock()
	r.total.Add(1)
}

func (r *receipts) count(action, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byKey[action+" "+key]
}

// node is one cache of the test's cluster, with what it received and how
// many times its factory ran.
type node struct {
	*core.Cache
	got       *receipts
	factories atomic.Int64
	f         *fixture
}

// newNode makes a cache on the Redis L2 and Redis backplane shared by the
// fixture's nodes, on clients of its own. mod may adjust its options.
func (f *fixture) newNode(mod func(*core.Options)) *node {
	t := f.t
	t.Helper()
	n := &node{got: &receipts{byKey: map[string]int{}}, f: f}
	n.Cache = newCache(t, f.name, f.prefix, "", "", func(o *core.Options) {
		o.Observers = append(o.Observers, n.got)
		if mod != nil {
			mod(o)
		}
	})
	return n
}

// newCache makes a cache named name on a Redis L2 (key prefix prefix) and
// the Redis backplane, closed (before its clients) when the test ends. The
// L2 and backplane clients go to the test server, or to l2Addr and bpAddr
// when set (a proxy).
func newCache(t testing.TB, name, prefix, l2Addr, bpAddr string, mod func(*core.Options)) *core.Cache {
	t.Helper()
	fast := func(addr string) *redis.Options {
		return &redis.Options{Addr: addr, ContextTimeoutEnabled: true, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1}
	}
	client := redistest.NewClient(t, fast(l2Addr))
	store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	bpClient := redistest.NewClient(t, fast(bpAddr))
	bp, err := redisbackplane.New(bpClient, &redisbackplane.Options{HealthCheckInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bp.Close() })
	o := core.Options{Name: name, L2: store, Backplane: bp, WaitForInitialSubscribe: 10 * time.Second}
	if mod != nil {
		mod(&o)
	}
	c, err := core.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// read is tryRead, failing the test on error; only for the test's
// goroutine.
func (n *node) read(t testing.TB, id int) string {
	t.Helper()
	v, err := n.tryRead(id)
	if err != nil {
		t.Fatalf("read %d: %v", id, err)
	}
	return v
}

// tryRead returns the value of row id through the node's cache: the factory
// reads the row and tags the entry with its tenant and "table". A missing
// row is cached as "-".
func (n *node) tryRead(id int) (string, error) {
	return core.GetOrSet(context.Background(), n.Cache, fmt.Sprint("p:", id),
		func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
			n.factories.Add(1)
			var v string
			var tenant *int
			err := n.f.db.QueryRow(ctx, `SELECT v, tenant FROM `+n.f.table+` WHERE id = $1`, id).Scan(&v, &tenant)
			if errors.Is(err, pgx.ErrNoRows) {
				fc.Options.Tags = []string{"table"}
				return "-", nil
			}
			fc.Options.Tags = []string{"table"}
			if tenant != nil {
				fc.Options.Tags = append(fc.Options.Tags, fmt.Sprint("tenant:", *tenant))
			}
			return v, err
		}, core.WithDuration(time.Hour))
}

// startConsumer runs a consumer of the fixture's slot against cache until
// the test ends (or stop is called); mod may adjust its options.
func (f *fixture) startConsumer(cache *core.Cache, mod func(*pgcdc.Options)) (c *pgcdc.Consumer, stop func() error) {
	t := f.t
	t.Helper()
	o := f.opts
	if mod != nil {
		mod(&o)
	}
	c, err := pgcdc.New(f.url, f.rules, &o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, cache) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "the consumer to hold the slot", func() bool { return c.Stats().Active })
	return c, stop
}

// startConsumerStandby runs a consumer of the fixture's slot against cache
// until the test ends, without waiting for it to take the slot.
func (f *fixture) startConsumerStandby(cache *core.Cache) (*pgcdc.Consumer, func() error) {
	t := f.t
	t.Helper()
	c, err := pgcdc.New(f.url, f.rules, &f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, cache) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c, stop
}

// waitFor polls cond every 2 ms until it holds, failing t after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// bound is how soon after a commit every node must serve the new value in
// these tests: core's staleness bound, a generous margin over the
// milliseconds it takes.
const bound = core.DefaultBackplaneStalenessBound

// expectServed polls every node until each serves want for row id, failing
// the test after bound; it returns how long the slowest took from since.
func expectServed(t testing.TB, since time.Time, id int, want string, nodes ...*node) time.Duration {
	t.Helper()
	var slowest time.Duration
	for _, n := range nodes {
		waitFor(t, bound-time.Since(since), fmt.Sprintf("%s to serve %q for row %d", n.InstanceID(), want, id), func() bool { return n.read(t, id) == want })
		slowest = max(slowest, time.Since(since))
	}
	return slowest
}

// dropSlot drops a slot, waiting (at most 10s) for the walsender of a
// consumer that just stopped to release it.
func (f *fixture) dropSlot(slot string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := f.db.Exec(context.Background(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" || time.Now().After(deadline) {
			if err != nil {
				f.t.Errorf("drop slot %s: %v", slot, err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
