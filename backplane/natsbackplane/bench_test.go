package natsbackplane_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/natsbackplane"
	"github.com/stratacache/strata/internal/natstest"
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
// another connection, one at a time: with the client alone (raw), then
// through the adapter (Publish to MessageFunc).
func BenchmarkLatency(b *testing.B) {
	url := natstest.URL(b)
	payload := make([]byte, 100) // about a backplane message
	connect := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}

	b.Run("raw", func(b *testing.B) {
		sub, pub := connect(), connect()
		subject := testChannel()
		got := make(chan struct{}, 1)
		s, err := sub.Subscribe(subject, func(*nats.Msg) { got <- struct{}{} })
		if err != nil {
			b.Fatal(err)
		}
		defer s.Unsubscribe()
		if err := sub.Flush(); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if err := pub.Publish(subject, payload); err != nil {
				b.Fatal(err)
			}
			<-got
			lat = append(lat, time.Since(start))
		}
		reportLatency(b, lat)
	})

	b.Run("adapter", func(b *testing.B) {
		ctx := context.Background()
		sb, err := natsbackplane.New(connect(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer sb.Close()
		pb, err := natsbackplane.New(connect(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer pb.Close()
		channel := testChannel()
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
