package rabbitbackplane_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
	"github.com/stratacache/strata/bench"
	"github.com/stratacache/strata/internal/rabbittest"
)

// reportLatency reports the median and 99th percentile of lat, in µs.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkLatency measures one payload's trip from publish to receipt on
// another connection, one at a time: with the client alone (raw:
// bench.NewRawPath's fanout exchange and exclusive queue, auto-ack), then
// through the adapter (Publish to MessageFunc), without and with publisher
// confirms.
func BenchmarkLatency(b *testing.B) {
	url := rabbittest.URL(b)
	payload := make([]byte, 100) // about a backplane message
	ex := &exchanges{}
	b.Cleanup(func() {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		rabbittest.DeleteExchanges(b, url, ex.names)
	})

	b.Run("raw", func(b *testing.B) {
		ctx := context.Background()
		raw, err := bench.NewRawPath(ctx, bench.Servers{AMQPURL: url}, "amqp")
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := raw.Close(); err != nil {
				b.Error(err)
			}
		}()
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			d, err := raw.Trip(ctx)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, d)
		}
		reportLatency(b, lat)
	})

	for _, confirm := range []bool{false, true} {
		name := "adapter"
		if confirm {
			name = "adapter-confirm"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			opts := &rabbitbackplane.Options{Confirm: confirm}
			sb, err := rabbitbackplane.New(ctx, url, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			pb, err := rabbitbackplane.New(ctx, url, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer pb.Close()
			channel := testChannel(ex)
			got := make(chan struct{}, 1)
			sub, err := sb.Subscribe(ctx, channel, func([]byte) { got <- struct{}{} }, func(backplane.State, error) {})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := pb.Publish(ctx, channel, payload); err != nil {
					b.Fatal(err)
				}
				<-got
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}
