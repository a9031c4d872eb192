package pgcdc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/pgtest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/invalidation/pgcdc"
)

// TestChangesInvalidateEveryNode: two nodes on the Redis L2 and backplane
// cache rows; plain SQL changes them; the consumer, running on the first
// node, makes both serve the new rows within the bound. Each step also
// checks that, before the change, the nodes served their cached copy (the
// factory did not run), so that what the test sees is the invalidation.
func TestChangesInvalidateEveryNode(t *testing.T) {
	f := newFixture(t, 4)
	a, b := f.newNode(nil), f.newNode(nil)
	c, _ := f.startConsumer(a.Cache, nil)

	cached := func(id int, want string) {
		t.Helper()
		for _, n := range []*node{a, b} {
			n.read(t, id)
			before := n.factories.Load()
			if got := n.read(t, id); got != want || n.factories.Load() != before {
				t.Fatalf("%s: row %d = %q (factory ran %d times); want %q from the cache", n.InstanceID(), id, got, n.factories.Load()-before, want)
			}
		}
	}

	t.Run("update", func(t *testing.T) {
		cached(1, "0")
		start := time.Now()
		f.exec(`UPDATE ` + f.table + ` SET v = 'updated' WHERE id = 1`)
		d := expectServed(t, start, 1, "updated", a, b)
		t.Logf("UPDATE: every node served the new row %v after the statement was sent", d)
	})

	t.Run("moved tenant invalidates both tags", func(t *testing.T) {
		// Entries tagged by tenant (a per-tenant list, say), cached on
		// both nodes. Row 2 is in tenant 1, row 3 in tenant 2.
		lists := map[int]int{}
		list := func(n *node, tenant int) int {
			v, err := core.GetOrSet(context.Background(), n.Cache, fmt.Sprint("list:", tenant),
				func(ctx context.Context, fc *core.FactoryContext[int]) (int, error) {
					lists[tenant]++
					var count int
					err := f.db.QueryRow(ctx, `SELECT count(*) FROM `+f.table+` WHERE tenant = $1`, tenant).Scan(&count)
					return count, err
				}, core.WithDuration(time.Hour), core.WithTags(fmt.Sprint("tenant:", tenant)))
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		before := map[int]int{}
		for _, tenant := range []int{1, 2} {
			for _, n := range []*node{a, b} {
				before[tenant] = list(n, tenant)
			}
		}
		f.exec(`UPDATE ` + f.table + ` SET tenant = 2 WHERE id = 2`) // from tenant 1 to tenant 2
		for _, tenant := range []int{1, 2} {
			want := before[tenant] + 1
			if tenant == 1 {
				want = before[tenant] - 1
			}
			for _, n := range []*node{a, b} {
				waitFor(t, bound, fmt.Sprintf("%s to recount tenant %d", n.InstanceID(), tenant), func() bool { return list(n, tenant) == want })
			}
		}
	})

	t.Run("insert invalidates a cached miss", func(t *testing.T) {
		cached(100, "-")
		start := time.Now()
		f.exec(`INSERT INTO ` + f.table + ` VALUES (100, 1, 'new')`)
		expectServed(t, start, 100, "new", a, b)
	})

	t.Run("delete", func(t *testing.T) {
		cached(3, "0")
		start := time.Now()
		f.exec(`DELETE FROM ` + f.table + ` WHERE id = 3`)
		expectServed(t, start, 3, "-", a, b)
	})

	t.Run("truncate removes the table tag", func(t *testing.T) {
		cached(4, "0")
		cached(100, "new")
		start := time.Now()
		f.exec(`TRUNCATE ` + f.table)
		expectServed(t, start, 4, "-", a, b)
		expectServed(t, start, 100, "-", a, b)
	})

	t.Run("a transaction is applied as one, with its commit time", func(t *testing.T) {
		cached(5, "-")
		cached(6, "-")
		txBefore := c.Stats().Transactions
		start := time.Now()
		f.exec(`INSERT INTO ` + f.table + ` VALUES (5, 1, 'five'), (6, 2, 'six')`)
		expectServed(t, start, 5, "five", a, b)
		expectServed(t, start, 6, "six", a, b)
		waitFor(t, bound, "the transaction to be counted", func() bool { return c.Stats().Transactions > txBefore })
	})

	s := c.Stats()
	if s.BadMessages != 0 || s.Unresolved != 0 || s.Skipped != 0 || s.Takeovers != 1 || s.ConfirmedLSN == 0 {
		t.Errorf("consumer stats %+v", s)
	}
	for _, n := range []*node{a, b} {
		if st := n.Stats(); st.L2Errors != 0 || st.BackplaneErrors != 0 {
			t.Errorf("%s: %+v", n.InstanceID(), st)
		}
	}
}

// TestRestartLosesNothing: changes committed while no consumer runs are
// applied by the next one, from where the last one confirmed.
func TestRestartLosesNothing(t *testing.T) {
	f := newFixture(t, 20)
	f.rules = []pgcdc.Rule{{Table: f.table, Keys: []string{"p:{id}"}}} // each update its own key only
	a, b := f.newNode(nil), f.newNode(nil)
	_, stop := f.startConsumer(a.Cache, nil)
	for id := 1; id <= 20; id++ {
		a.read(t, id)
		b.read(t, id)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 20; id++ {
		f.exec(`UPDATE `+f.table+` SET v = 'while down' WHERE id = $1`, id)
	}
	time.Sleep(100 * time.Millisecond)
	if got := b.read(t, 7); got != "0" {
		t.Fatalf("row 7 = %q with no consumer running; want the cached %q (else the test shows nothing)", got, "0")
	}
	start := time.Now()
	c, _ := f.startConsumer(b.Cache, nil)
	for id := 1; id <= 20; id++ {
		expectServed(t, start, id, "while down", a, b)
	}
	waitFor(t, bound, "the restarted consumer to count 20 transactions", func() bool { return c.Stats().Transactions >= 20 })
}

// TestNoLostUpdate: a factory that read the row before the commit and
// writes its result after the invalidation was applied does not get its old
// value cached over it, even when the consumer's node's clock is 10 minutes
// behind the database's: the invalidation's version is the commit time
// (core.WithChangedAt), newer than the factory's start. The racing factory
// runs on a node that shares the L2 but hears no backplane message (as a
// node whose messages are late): the L2 decides, by version, between its
// write and the invalidation's tombstone. Without the commit time as the
// version, the tombstone (stamped by the slow clock) loses, and a node
// reading L2 afterwards serves the old row.
func TestNoLostUpdate(t *testing.T) {
	f := newFixture(t, 1)
	a := f.newNode(func(o *core.Options) { o.Clock = &offsetClock{d: -10 * time.Minute} })
	racer := f.newNode(func(o *core.Options) { o.Backplane = nil })
	applied := make(chan pgcdc.Transaction, 10)
	f.startConsumer(a.Cache, func(o *pgcdc.Options) { o.OnApply = func(tx pgcdc.Transaction) { applied <- tx } })

	readOld, release := make(chan struct{}), make(chan struct{})
	got := make(chan string, 1)
	go func() {
		v, err := core.GetOrSet(context.Background(), racer.Cache, "p:1", func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
			var v string
			err := f.db.QueryRow(ctx, `SELECT v FROM `+f.table+` WHERE id = 1`).Scan(&v)
			close(readOld)
			<-release // the commit and its invalidation happen now
			return v, err
		}, core.WithDuration(time.Hour))
		if err != nil {
			v = err.Error()
		}
		got <- v
	}()
	<-readOld
	time.Sleep(10 * time.Millisecond) // the commit comes clearly after the read
	f.exec(`UPDATE ` + f.table + ` SET v = 'new' WHERE id = 1`)
	var tx pgcdc.Transaction
	select {
	case tx = <-applied:
	case <-time.After(bound):
		t.Fatal("the invalidation was not applied")
	}
	if len(tx.Keys) != 1 || tx.Keys[0] != "p:1" || time.Since(tx.CommitTime) > bound || tx.Attempts != 1 {
		t.Errorf("applied %+v", tx)
	}
	close(release)
	if v := <-got; v != "0" {
		t.Fatalf("the racing read returned %q, want the old %q it read", v, "0")
	}
	// Nothing old is served after the invalidation by a node that reads
	// L2 now, nor by the consumer's node.
	late := f.newNode(nil)
	for _, n := range []*node{late, a} {
		if v := n.read(t, 1); v != "new" {
			t.Errorf("%s serves %q after the invalidation, want %q", n.InstanceID(), v, "new")
		}
	}
}

// offsetClock is the system clock moved by d.
type offsetClock struct{ d time.Duration }

func (c *offsetClock) Now() time.Time { return time.Now().Add(c.d) }

// TestSetup: Setup is idempotent and reports what it did; its errors name
// the problem.
func TestSetup(t *testing.T) {
	f := newFixture(t, 0) // has run Setup once
	ctx := context.Background()
	res, err := pgcdc.Setup(ctx, f.url, f.rules, &f.opts)
	if err != nil || res.CreatedPublication || res.CreatedSlot || len(res.AddedTables) != 0 {
		t.Fatalf("second Setup: %+v, %v; want nothing created", res, err)
	}

	t.Run("adds a table to the publication", func(t *testing.T) {
		other := f.table + "_b"
		f.exec(`CREATE TABLE ` + other + ` (id int PRIMARY KEY)`)
		t.Cleanup(func() { f.exec(`DROP TABLE ` + other) })
		rules := append(f.rules, pgcdc.Rule{Table: "public." + other, Keys: []string{"b:{id}"}})
		res, err := pgcdc.Setup(ctx, f.url, rules, &f.opts)
		if err != nil || len(res.AddedTables) != 1 || res.AddedTables[0] != "public."+other {
			t.Fatalf("Setup: %+v, %v", res, err)
		}
	})

	t.Run("rule that does not fit the table", func(t *testing.T) {
		for _, tc := range []struct {
			rule pgcdc.Rule
			why  string
		}{
			{pgcdc.Rule{Table: f.table, Keys: []string{"p:{nope}"}}, "no such column"},
			{pgcdc.Rule{Table: "no_such_table", Keys: []string{"p:{id}"}}, "no table"},
		} {
			_, err := pgcdc.Setup(ctx, f.url, []pgcdc.Rule{tc.rule}, &f.opts)
			var re *pgcdc.RuleError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Setup(%v) = %v; want a *RuleError saying %q", tc.rule, err, tc.why)
			}
		}
		f.exec(`CREATE TABLE ` + f.table + `_c (id int PRIMARY KEY, tenant int)`)
		t.Cleanup(func() { f.exec(`DROP TABLE ` + f.table + `_c`) })
		_, err := pgcdc.Setup(ctx, f.url, []pgcdc.Rule{{Table: f.table + "_c", Tags: []string{"t:{tenant}"}}}, &f.opts)
		if err == nil || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
			t.Errorf("Setup with a non-key column, default identity: %v; want advice to set REPLICA IDENTITY FULL", err)
		}
	})

	t.Run("role without REPLICATION", func(t *testing.T) {
		role := "norepl_" + f.opts.Slot
		f.exec(`CREATE ROLE ` + role + ` LOGIN`)
		t.Cleanup(func() { f.exec(`DROP ROLE ` + role) })
		u := strings.Replace(f.url, "postgres@", role+"@", 1)
		_, err := pgcdc.Setup(ctx, u, f.rules, &f.opts)
		if !errors.Is(err, pgcdc.ErrNoReplication) || !strings.Contains(err.Error(), "ALTER ROLE") {
			t.Errorf("Setup as %s: %v; want ErrNoReplication saying ALTER ROLE", role, err)
		}
	})

	t.Run("slot name taken by another plugin", func(t *testing.T) {
		taken := f.opts.Slot + "_td"
		f.exec(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, taken)
		t.Cleanup(func() { f.exec(`SELECT pg_drop_replication_slot($1)`, taken) })
		o := f.opts
		o.Slot = taken
		_, err := pgcdc.Setup(ctx, f.url, f.rules, &o)
		if !errors.Is(err, pgcdc.ErrSlotTaken) || !strings.Contains(err.Error(), "test_decoding") {
			t.Errorf("Setup: %v; want ErrSlotTaken naming test_decoding", err)
		}
	})

	t.Run("slot held by a consumer", func(t *testing.T) {
		a := f.newNode(nil)
		f.startConsumer(a.Cache, nil)
		res, err := pgcdc.Setup(ctx, f.url, f.rules, &f.opts)
		if err != nil || res.SlotActivePID == 0 {
			t.Errorf("Setup while a consumer streams: %+v, %v; want the walsender's pid", res, err)
		}
		o := f.opts
		o.NoStandby = true
		c, err := pgcdc.New(f.url, f.rules, &o)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Run(ctx, a.Cache)
		if !errors.Is(err, pgcdc.ErrSlotActive) {
			t.Errorf("Run with NoStandby while the slot is held: %v; want ErrSlotActive", err)
		}
	})

	t.Run("missing slot", func(t *testing.T) {
		o := f.opts
		o.Slot = "no_such_slot"
		c, err := pgcdc.New(f.url, f.rules, &o)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(ctx, f.newNode(nil).Cache); !errors.Is(err, pgcdc.ErrNoSlot) {
			t.Errorf("Run on a missing slot: %v; want ErrNoSlot", err)
		}
	})
}

// TestSetupWalLevel: on a server with wal_level=replica, Setup says what to
// set, on the big clouds too.
func TestSetupWalLevel(t *testing.T) {
	server(t) // skips or fails as the other tests do without PostgreSQL
	srv := pgtest.Start(t, &pgtest.Options{WalLevel: "replica"})
	_, err := pgcdc.Setup(context.Background(), srv.URL("postgres"), []pgcdc.Rule{{Table: "t", Keys: []string{"k"}}}, nil)
	if !errors.Is(err, pgcdc.ErrWalLevel) {
		t.Fatalf("Setup: %v; want ErrWalLevel", err)
	}
	for _, want := range []string{`"replica"`, "rds.logical_replication", "cloudsql.logical_decoding", "Azure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestRuleNotFittingTheStreamStopsRun: a rule naming a column the table
// does not have, not caught by Setup (the column was dropped after), makes
// Run return a *RuleError when the stream describes the table, without
// confirming the change.
func TestRuleNotFittingTheStreamStopsRun(t *testing.T) {
	f := newFixture(t, 1)
	f.exec(`ALTER TABLE ` + f.table + ` DROP COLUMN tenant`)
	a := f.newNode(nil)
	c, err := pgcdc.New(f.url, f.rules, &f.opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), a.Cache) }()
	f.exec(`UPDATE ` + f.table + ` SET v = 'x' WHERE id = 1`)
	var updateLSN string
	if err := f.db.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&updateLSN); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	var re *pgcdc.RuleError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "{tenant}") {
		t.Fatalf("Run = %v; want a *RuleError about {tenant}", err)
	}
	var confirmedBefore bool
	if err := f.db.QueryRow(context.Background(), `SELECT confirmed_flush_lsn < $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
		f.opts.Slot, updateLSN).Scan(&confirmedBefore); err != nil {
		t.Fatal(err)
	}
	if !confirmedBefore || c.Stats().Transactions != 0 {
		t.Errorf("the slot was moved past the update it did not apply (%v), or a transaction counted (%d)", !confirmedBefore, c.Stats().Transactions)
	}
}

// TestOutageHoldsTheSlot: while the consumer's cache cannot write L2 or
// publish, core's Remove still returns nil (it queues the work for
// auto-recovery); the consumer sees it in the cache's counters, does not
// confirm the transaction, and applies it again until it is written and
// published. The slot's confirmed position stays before the commit until
// then.
func TestOutageHoldsTheSlot(t *testing.T) {
	for _, which := range []string{"l2", "backplane"} {
		t.Run(which, func(t *testing.T) {
			f := newFixture(t, 1)
			b := f.newNode(nil)
			proxy := redistest.StartProxy(t, redistest.Addr(t))
			l2Addr, bpAddr := "", ""
			if which == "l2" {
				l2Addr = proxy.Addr()
			} else {
				bpAddr = proxy.Addr()
			}
			a := &node{got: &receipts{byKey: map[string]int{}}, f: f}
			a.Cache = newCache(t, f.name, f.prefix, l2Addr, bpAddr, func(o *core.Options) {
				o.L2CircuitBreakerDuration = 200 * time.Millisecond
				o.BackplaneCircuitBreakerDuration = 200 * time.Millisecond
				o.AutoRecoveryDelay = 100 * time.Millisecond
			})
			c, _ := f.startConsumer(a.Cache, func(o *pgcdc.Options) {
				o.RetryInterval, o.MaxRetryInterval, o.StatusInterval = 100*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond
			})
			b.read(t, 1)

			proxy.Cut()
			f.exec(`UPDATE ` + f.table + ` SET v = 'during the outage' WHERE id = 1`)
			var commitLSN string
			if err := f.db.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&commitLSN); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the consumer to retry", func() bool { return c.Stats().Retries >= 2 })
			time.Sleep(200 * time.Millisecond) // several status reports
			var before bool
			if err := f.db.QueryRow(context.Background(), `SELECT confirmed_flush_lsn < $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`,
				f.opts.Slot, commitLSN).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if !before || c.Stats().Transactions != 0 {
				t.Fatalf("during the outage the slot was confirmed past the commit (%v) or the transaction counted (%d)", !before, c.Stats().Transactions)
			}

			proxy.Restore()
			start := time.Now()
			expectServed(t, start, 1, "during the outage", b)
			waitFor(t, 10*time.Second, "the transaction to be applied", func() bool { return c.Stats().Transactions == 1 })
			t.Logf("%s outage: %d retries; served %v after the restore", which, c.Stats().Retries, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestTakeoverWhenTheHolderIsCutOff: the holder's network goes silent (a
// black hole: its process lives, nothing gets through). The server notices
// after wal_sender_timeout (5s on the test server) and frees the slot; the
// standby takes it within RetryInterval and applies the change committed
// meanwhile.
func TestTakeoverWhenTheHolderIsCutOff(t *testing.T) {
	f := newFixture(t, 1)
	a, b := f.newNode(nil), f.newNode(nil)
	proxy := redistest.StartProxy(t, server(t).Addr())
	cutURL := strings.Replace(f.url, server(t).Addr(), proxy.Addr(), 1)
	holder, err := pgcdc.New(cutURL, f.rules, &f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- holder.Run(ctx, a.Cache) }()
	t.Cleanup(func() {
		proxy.SetLatency(0)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("holder: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "the holder to take the slot", func() bool { return holder.Stats().Active })
	standby, _ := f.startConsumerStandby(b.Cache)
	a.read(t, 1)
	b.read(t, 1)

	proxy.SetLatency(time.Hour)
	start := time.Now()
	f.exec(`UPDATE ` + f.table + ` SET v = 'after the cut' WHERE id = 1`)
	const walSenderTimeout = 5 * time.Second
	limit := walSenderTimeout + f.opts.RetryInterval + 2*time.Second
	for _, n := range []*node{a, b} {
		waitFor(t, limit, n.InstanceID()+" to serve the change", func() bool { return n.read(t, 1) == "after the cut" })
	}
	t.Logf("the holder's network cut: the standby applied the change %v after the commit (wal_sender_timeout %v, RetryInterval %v)",
		time.Since(start).Round(time.Millisecond), walSenderTimeout, f.opts.RetryInterval)
	if standby.Stats().Takeovers != 1 || standby.Stats().Transactions == 0 {
		t.Errorf("standby %+v", standby.Stats())
	}
}

// TestExpireAction: a rule with Action Expire expires instead of removing:
// the next read calls the factory, and when the factory fails, fail-safe
// still answers with the old value.
func TestExpireAction(t *testing.T) {
	f := newFixture(t, 1)
	f.rules[0].Action = pgcdc.Expire
	a, b := f.newNode(nil), f.newNode(nil)
	f.startConsumer(a.Cache, nil)
	read := func(factoryErr error) (string, error) {
		return core.GetOrSet(context.Background(), b.Cache, "p:1", func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
			if factoryErr != nil {
				return "", factoryErr
			}
			var v string
			err := f.db.QueryRow(ctx, `SELECT v FROM `+f.table+` WHERE id = 1`).Scan(&v)
			return v, err
		}, core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Millisecond))
	}
	if v, err := read(nil); v != "0" || err != nil {
		t.Fatalf("first read: %q, %v", v, err)
	}
	f.exec(`UPDATE ` + f.table + ` SET v = 'new' WHERE id = 1`)
	waitFor(t, bound, "b to receive the expiry", func() bool { return b.got.count("expire", "p:1") > 0 })
	if v, err := read(errors.New("database down")); v != "0" || err != nil {
		t.Fatalf("read with the database down after the expiry: %q, %v; want the old value from fail-safe", v, err)
	}
	// Past the fail-safe throttle (1 ms, on the cache's coarse clock, which
	// a loaded machine can hold back a few ms), a read calls the source.
	waitFor(t, bound, "a read after the throttle to get the new value", func() bool {
		v, err := read(nil)
		if err != nil || v != "0" && v != "new" {
			t.Fatalf("read after the expiry: %q, %v; want %q (or the old value within the throttle)", v, err, "new")
		}
		return v == "new"
	})
}
