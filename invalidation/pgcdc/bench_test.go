package pgcdc_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stratacache/strata/invalidation/pgcdc"
)

// TestCDCLatency measures, for each of $STRATA_BENCH_CDC_ROUNDS (400)
// single-row UPDATEs, the time from the database commit (its commit
// timestamp, on the same machine's clock) to:
//
//   - floor: the commit message received by a bare pglogrepl client
//     streaming the same publication from a slot of its own;
//   - served: both nodes (Redis L2 and backplane; the consumer runs on the
//     first) serving the new value, polled every 100µs.
//
// Both come from the same commits (paired rounds), one update at a time.
// It runs only with STRATA_BENCH_CDC=1 (make bench-cdc), without -race for
// meaningful figures.
func TestCDCLatency(t *testing.T) {
	if os.Getenv("STRATA_BENCH_CDC") != "1" {
		t.Skip("set STRATA_BENCH_CDC=1 (make bench-cdc) to measure commit -> served latency")
	}
	rounds := 400
	if s := os.Getenv("STRATA_BENCH_CDC_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("STRATA_BENCH_CDC_ROUNDS=%q: want a positive integer", s)
		}
	}
	f := newFixture(t, 1)
	f.rules = []pgcdc.Rule{{Table: f.table, Keys: []string{"p:{id}"}}} // one invalidation per update
	a, b := f.newNode(nil), f.newNode(nil)
	f.startConsumer(a.Cache, nil)

	bare := f.opts
	bare.Slot = f.opts.Slot + "_bare"
	if _, err := pgcdc.Setup(context.Background(), f.url, f.rules, &bare); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dropSlot(bare.Slot) })
	commits := make(chan [2]time.Time, 16) // commit time, received
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bareClient(ctx, f.url, bare, commits) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bare client: %v", err)
		}
	})

	var floor, served, extra []time.Duration
	for i := 1; i <= rounds; i++ {
		want := strconv.Itoa(i)
		prev := strconv.Itoa(i - 1)
		if i == 1 {
			prev = "0"
		}
		for _, n := range []*node{a, b} {
			if v := n.read(t, 1); v != prev {
				t.Fatalf("round %d: %s serves %q before the update, want %q", i, n.InstanceID(), v, prev)
			}
		}
		f.exec(`UPDATE `+f.table+` SET v = $1 WHERE id = 1`, want)
		pending := []*node{a, b}
		var servedAt time.Time
		deadline := time.Now().Add(bound)
		for len(pending) > 0 {
			pending = slices.DeleteFunc(pending, func(n *node) bool { return n.read(t, 1) == want })
			servedAt = time.Now()
			if servedAt.After(deadline) {
				t.Fatalf("round %d: not served within %v", i, bound)
			}
			if len(pending) > 0 {
				// Poll, but leave the two cores to the database and the
				// consumer: a tight loop would slow what it measures.
				time.Sleep(100 * time.Microsecond)
			}
		}
		var c [2]time.Time
		select {
		case c = <-commits:
		case <-time.After(bound):
			t.Fatalf("round %d: the bare client received no commit", i)
		}
		floor = append(floor, c[1].Sub(c[0]))
		served = append(served, servedAt.Sub(c[0]))
		extra = append(extra, servedAt.Sub(c[1]))
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d updates, commit timestamp -> ...", rounds)
	t.Logf("%-44s %9s %9s %9s %9s", "", "p50", "p90", "p99", "max")
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{
		{"floor: bare pglogrepl client got the commit", floor},
		{"served: both nodes serve the new value", served},
		{"served minus floor (same commit)", extra},
	} {
		slices.Sort(r.d)
		t.Logf("%-44s %9s %9s %9s %9s", r.name, pct(r.d, 50), pct(r.d, 90), pct(r.d, 99), pct(r.d, 100))
	}
}

func pct(d []time.Duration, p int) string {
	i := min(len(d)-1, (len(d)*p+99)/100-1)
	return fmt.Sprintf("%.2fms", float64(d[max(i, 0)])/float64(time.Millisecond))
}

// bareClient streams the publication from its own slot with nothing but
// pglogrepl, sending each commit's time and when it was received.
func bareClient(ctx context.Context, url string, o pgcdc.Options, commits chan<- [2]time.Time) error {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, o.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + o.Publication + "'"}})
	if err != nil {
		return err
	}
	var pos pglogrepl.LSN
	next := time.Now().Add(time.Second)
	for {
		if time.Now().After(next) {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
				return err
			}
			next = time.Now().Add(time.Second)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case pgconn.Timeout(err):
			continue
		case err != nil:
			return err
		}
		received := time.Now()
		m, ok := raw.(*pgproto3.CopyData)
		if !ok || len(m.Data) == 0 || m.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		x, err := pglogrepl.ParseXLogData(m.Data[1:])
		if err != nil {
			return err
		}
		msg, err := pglogrepl.Parse(x.WALData)
		if err != nil {
			return err
		}
		if c, ok := msg.(*pglogrepl.CommitMessage); ok {
			pos = cmp.Or(c.TransactionEndLSN, pos)
			select {
			case commits <- [2]time.Time{c.CommitTime, received}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
