package strataotel_test

import (
	"context"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

func loadBenchUser(context.Context, *core.FactoryContext[string]) (string, error) { return "Ada", nil }

// BenchmarkL1Hit compares an L1 hit of GetOrSet without observers and with
// strataotel installed on SDK providers whose sampler drops every span, in
// the same run. The call passes the three per-call options of core's own
// BenchmarkL1Hit.
func BenchmarkL1Hit(b *testing.B) {
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute),
		core.WithFactoryTimeouts(100*time.Millisecond, 2*time.Second)}
	setups := []struct {
		name string
		obs  func(b *testing.B) []core.Observer
	}{
		{"plain", func(*testing.B) []core.Observer { return nil }},
		{"strataotel-neversample", func(b *testing.B) []core.Observer {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { tp.Shutdown(context.Background()); mp.Shutdown(context.Background()) })
			return []core.Observer{strataotel.New(strataotel.WithTracerProvider(tp), strataotel.WithMeterProvider(mp))}
		}},
	}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			c, err := core.New(core.Options{Observers: s.obs(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			core.GetOrSet(ctx, c, "k", loadBenchUser, opts...)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					core.GetOrSet(ctx, c, "k", loadBenchUser, opts...)
				}
			})
		})
	}
}

// BenchmarkL1HitOverhead measures the same two hits as BenchmarkL1Hit in
// alternating rounds, so that the noise of a shared machine hits both
// alike, and reports the medians and their ratio (otel-ns/op over
// plain-ns/op; the target is at most 1.3).
func BenchmarkL1HitOverhead(b *testing.B) {
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute),
		core.WithFactoryTimeouts(100*time.Millisecond, 2*time.Second)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())
	plain, _ := core.New(core.Options{})
	defer plain.Close()
	inst, _ := core.New(core.Options{Observers: []core.Observer{
		strataotel.New(strataotel.WithTracerProvider(tp), strataotel.WithMeterProvider(mp))}})
	defer inst.Close()
	ctx := context.Background()
	for _, c := range []*core.Cache{plain, inst} {
		core.GetOrSet(ctx, c, "k", loadBenchUser, opts...)
	}
	round := func(c *core.Cache, n int) float64 {
		start := time.Now()
		for range n {
			core.GetOrSet(ctx, c, "k", loadBenchUser, opts...)
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n)
	}
	const rounds = 21
	n := max(b.N/rounds, 1000)
	var p, o []float64
	b.ResetTimer()
	for range rounds {
		p = append(p, round(plain, n))
		o = append(o, round(inst, n))
	}
	b.StopTimer()
	slices.Sort(p)
	slices.Sort(o)
	b.ReportMetric(p[rounds/2], "plain-ns/op")
	b.ReportMetric(o[rounds/2], "otel-ns/op")
	b.ReportMetric(o[rounds/2]/p[rounds/2], "ratio")
	b.ReportMetric(0, "ns/op")
}
