package natskvl2_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/l2/natskvl2"
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

// BenchmarkGet compares a raw KV Get with Store.Get of a 200-byte value
// (about a small cache entry), and a raw KV Update with Store.SetIfNewer
// (which reads, then updates with the revision), on a file bucket.
func BenchmarkGet(b *testing.B) {
	url := natstest.URL(b)
	ctx := context.Background()
	_, js := connect(b, url)
	bucket := testBucket(b, js)
	s, err := natskvl2.New(ctx, js, &natskvl2.Options{Bucket: bucket})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 200)
	if _, err := kv.Put(ctx, "raw", value); err != nil {
		b.Fatal(err)
	}
	if err := s.Set(ctx, "adapter", value, time.Hour); err != nil {
		b.Fatal(err)
	}
	measure := func(b *testing.B, op func() error) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if err := op(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportLatency(b, lat)
	}
	b.Run("raw-get", func(b *testing.B) {
		measure(b, func() error { _, err := kv.Get(ctx, "raw"); return err })
	})
	b.Run("store-get", func(b *testing.B) {
		measure(b, func() error { _, _, err := s.Get(ctx, "adapter"); return err })
	})
	b.Run("raw-update", func(b *testing.B) {
		rev, _ := kv.Put(ctx, "raw", value)
		measure(b, func() error {
			var err error
			rev, err = kv.Update(ctx, "raw", value, rev)
			return err
		})
	})
	b.Run("store-setifnewer", func(b *testing.B) {
		v := time.Now().UnixNano()
		measure(b, func() error {
			v++
			_, err := s.SetIfNewer(ctx, "adapter", value, time.Hour, v)
			return err
		})
	})
}
