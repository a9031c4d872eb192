package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stratacache/strata/bench"
	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
)

// BenchmarkInvalidationLatency measures, for each backplane, how long after
// node A calls core.Set node B's observer gets EventBackplaneReceived for
// the key ("strata"), next to the raw client's publish→receive on the same
// server ("raw"): the trips of bench.NewInvalidationPath and
// bench.NewRawPath. It reports the p50 and p99 of one trip at a time. Run
// it with a small count: -bench InvalidationLatency -benchtime 2000x.
func BenchmarkInvalidationLatency(b *testing.B) {
	for _, bp := range backplanes {
		b.Run(bp+"/strata", func(b *testing.B) { runTrips(b, openPath(b, bench.NewInvalidationPath, bp)) })
		b.Run(bp+"/raw", func(b *testing.B) { runTrips(b, openPath(b, bench.NewRawPath, bp)) })
	}
}

// BenchmarkInvalidationLatencyPaired makes the same trips as
// BenchmarkInvalidationLatency, a strata trip and a raw one in turn, so
// that the load of a shared machine falls on both alike, and reports both
// distributions and the ratio of their p99s (the target is at most 1.3).
// Run it with -benchtime 3000x.
func BenchmarkInvalidationLatencyPaired(b *testing.B) {
	for _, bp := range backplanes {
		b.Run(bp, func(b *testing.B) {
			strata, raw := openPath(b, bench.NewInvalidationPath, bp), openPath(b, bench.NewRawPath, bp)
			ls := make([]time.Duration, 0, b.N)
			lr := make([]time.Duration, 0, b.N)
			for b.Loop() {
				ls = append(ls, trip(b, strata))
				lr = append(lr, trip(b, raw))
			}
			reportPaired(b, ls, lr)
		})
	}
}

// BenchmarkUpdateServedPaired measures, per backplane, an update on node A
// served by node B: from A's core.Set until B, told by the backplane, has
// the new value from core.GetOrSet (both nodes with a Redis L2), next to
// the raw clients' floor (go-redis SET, the transport's raw publish →
// receive, go-redis GET): the trips of bench.NewUpdatePath and
// bench.NewRawUpdatePath, one strata trip and one raw trip in turn after 20
// unmeasured pairs. Variant "invalidate" is the default (B re-reads L2);
// "values" carries the entry on the backplane (skipped until core has
// WithValueOnBackplane). Each trip checks the value B served. It reports
// both distributions and the ratios of their p50s and p99s. Run it with
// -benchtime 2000x -count 3.
func BenchmarkUpdateServedPaired(b *testing.B) {
	for _, bp := range backplanes {
		for _, variant := range []string{"invalidate", "values"} {
			b.Run(bp+"/"+variant, func(b *testing.B) {
				values := variant == "values"
				s := updateServers(b, bp)
				strata := openPath(b, func(ctx context.Context, _ bench.Servers, tr string) (*bench.Path, error) {
					return bench.NewUpdatePath(ctx, s, tr, bench.UpdateOptions{ValueOnBackplane: values})
				}, bp)
				raw := openPath(b, func(ctx context.Context, _ bench.Servers, tr string) (*bench.Path, error) {
					return bench.NewRawUpdatePath(ctx, s, tr)
				}, bp)
				if _, err := bench.Interleave(context.Background(), 0, strata, raw); err != nil { // the unmeasured pairs
					b.Fatal(err)
				}
				ls := make([]time.Duration, 0, b.N)
				lr := make([]time.Duration, 0, b.N)
				for b.Loop() {
					ls = append(ls, trip(b, strata))
					lr = append(lr, trip(b, raw))
				}
				reportPaired(b, ls, lr)
			})
		}
	}
}

// updateServers returns the servers of an update path on backplane bp:
// Redis (the L2) and bp's.
func updateServers(b *testing.B, bp string) bench.Servers {
	s := bench.Servers{RedisAddr: redistest.Addr(b)}
	switch bp {
	case "nats":
		s.NATSURL = natstest.URL(b)
	case "amqp":
		s.AMQPURL = rabbittest.URL(b)
	}
	return s
}

// openPath opens a bench path on backplane bp's test server, closed by b's
// cleanup.
func openPath(b *testing.B, open func(context.Context, bench.Servers, string) (*bench.Path, error), bp string) *bench.Path {
	b.Helper()
	var s bench.Servers
	switch bp {
	case "redis":
		s.RedisAddr = redistest.Addr(b)
	case "nats":
		s.NATSURL = natstest.URL(b)
	case "amqp":
		s.AMQPURL = rabbittest.URL(b)
	}
	p, err := open(context.Background(), s, bp)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := p.Close(); err != nil {
			b.Error(err)
		}
	})
	return p
}

// trip makes one trip on p and returns how long it took.
func trip(b *testing.B, p *bench.Path) time.Duration {
	d, err := p.Trip(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func runTrips(b *testing.B, p *bench.Path) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		lat = append(lat, trip(b, p))
	}
	reportLatency(b, lat)
}

// reportLatency reports the p50 and p99 of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	p50, p99 := percentiles(lat)
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
}

// reportPaired reports the p50 and p99 of strata's and the raw client's
// latencies, in microseconds, and their ratios.
func reportPaired(b *testing.B, strata, raw []time.Duration) {
	s50, s99 := percentiles(strata)
	r50, r99 := percentiles(raw)
	b.ReportMetric(s50, "strata-p50-µs")
	b.ReportMetric(s99, "strata-p99-µs")
	b.ReportMetric(r50, "raw-p50-µs")
	b.ReportMetric(r99, "raw-p99-µs")
	b.ReportMetric(s50/r50, "p50-ratio")
	b.ReportMetric(s99/r99, "p99-ratio")
	b.ReportMetric(0, "ns/op")
}

// percentiles sorts lat and returns its p50 and p99 in microseconds.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Microsecond)
	}
	return q(0.50), q(0.99)
}
