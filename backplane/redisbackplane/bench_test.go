package redisbackplane_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/internal/redistest"
)

// BenchmarkRoundTrip measures the latency from publishing a payload to
// receiving it on another connection, one payload at a time: a raw go-redis
// PUBLISH read from a PubSub's Channel, and redisbackplane's Publish to a
// subscription's MessageFunc. It reports the median and 99th percentile in
// ns (p50-ns, p99-ns). Run with:
//
//	go test -run '^$' -bench . -benchtime 2000x ./backplane/redisbackplane/
func BenchmarkRoundTrip(b *testing.B) {
	payload := make([]byte, 128)
	b.Run("go-redis", func(b *testing.B) {
		pubc, subc := redistest.NewClient(b, nil), redistest.NewClient(b, nil)
		ch := backplane.ChannelName("bench-" + redistest.Unique())
		ps := subc.Subscribe(context.Background(), ch)
		defer ps.Close()
		if _, err := ps.Receive(context.Background()); err != nil { // the confirmation
			b.Fatal(err)
		}
		msgs := ps.Channel()
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if err := pubc.Publish(ctx, ch, payload).Err(); err != nil {
				b.Fatal(err)
			}
			<-msgs
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
	b.Run("redisbackplane", func(b *testing.B) {
		pub, err := redisbackplane.New(redistest.NewClient(b, nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		sub, err := redisbackplane.New(redistest.NewClient(b, nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		ch := backplane.ChannelName("bench-" + redistest.Unique())
		got := make(chan struct{}, 1)
		s, err := sub.Subscribe(context.Background(), ch, func([]byte) { got <- struct{}{} }, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if err := pub.Publish(ctx, ch, payload); err != nil {
				b.Fatal(err)
			}
			<-got
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
}

// report adds the median and 99th percentile of lat to b's results.
func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
