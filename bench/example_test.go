package bench_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stratacache/strata/bench"
)

func ExampleZipfTrace() {
	t := bench.ZipfTrace(1.2, 1000, 10_000, 1)
	top := 0
	for _, k := range t.Requests {
		if k == 0 {
			top++
		}
	}
	fmt.Println(len(t.Requests), "requests over", len(t.Keys), "keys; the first is", t.Keys[0])
	fmt.Println("the most popular key takes more than a tenth:", top > 1000)
	// Output:
	// 10000 requests over 1000 keys; the first is key:0
	// the most popular key takes more than a tenth: true
}

func ExampleHitRatio() {
	trace := bench.ZipfTrace(1.1, 100_000, 1_000_000, 1)
	for _, p := range bench.HitRatioPolicies() {
		r, err := bench.HitRatio(p, 10_000, trace)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-24s %.3f (capacity: %s)\n", p.Name, r, p.Capacity)
	}
}

func ExampleL1HitCases() {
	for _, hc := range bench.L1HitCases() {
		r := testing.Benchmark(hc.Benchmark)
		fmt.Printf("%s %s: %s\n", hc.Name, hc.API, r)
	}
}

func ExampleMissCases() {
	for _, mc := range bench.MissCases() {
		r := testing.Benchmark(mc.Benchmark)
		fmt.Printf("%s %s: %s %s\n", mc.Name, mc.API, r, r.MemString())
	}
}

func ExampleInvalidationLatency() {
	ctx := context.Background()
	s := bench.ServersFromEnv()
	for _, tr := range bench.Transports {
		strata, err := bench.InvalidationLatency(ctx, s, tr, 1000)
		if err != nil {
			panic(err)
		}
		raw, err := bench.RawLatency(ctx, s, tr, 1000)
		if err != nil {
			panic(err)
		}
		slices.Sort(strata)
		slices.Sort(raw)
		fmt.Printf("%s: p99 %v (raw client %v)\n", tr, bench.Percentile(strata, 0.99), bench.Percentile(raw, 0.99))
	}
}

// Paths made side by side let the caller interleave the trips, a strata one
// and a raw one in turn, so that the load of a shared machine falls on both
// alike.
func ExampleNewInvalidationPath() {
	ctx := context.Background()
	s := bench.ServersFromEnv()
	strata, err := bench.NewInvalidationPath(ctx, s, "nats")
	if err != nil {
		panic(err)
	}
	defer strata.Close()
	raw, err := bench.NewRawPath(ctx, s, "nats")
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	var ls, lr []time.Duration
	for range 1000 {
		d, err := strata.Trip(ctx)
		if err != nil {
			panic(err)
		}
		ls = append(ls, d)
		if d, err = raw.Trip(ctx); err != nil {
			panic(err)
		}
		lr = append(lr, d)
	}
	slices.Sort(ls)
	slices.Sort(lr)
	fmt.Printf("p99: strata %v, raw client %v\n", bench.Percentile(ls, 0.99), bench.Percentile(lr, 0.99))
}

// An update on node A served by node B, strata's path and the raw clients'
// floor interleaved by Interleave, one trip of each in turn; every trip
// checks that B served the value A set.
func ExampleNewUpdatePath() {
	ctx := context.Background()
	s := bench.ServersFromEnv()
	strata, err := bench.NewUpdatePath(ctx, s, "redis", bench.UpdateOptions{})
	if err != nil {
		panic(err)
	}
	defer strata.Close()
	floor, err := bench.NewRawUpdatePath(ctx, s, "redis")
	if err != nil {
		panic(err)
	}
	defer floor.Close()
	lat, err := bench.Interleave(ctx, 1000, strata, floor)
	if err != nil {
		panic(err)
	}
	for _, l := range lat {
		slices.Sort(l)
	}
	fmt.Printf("p50: strata %v, floor %v\n", bench.Percentile(lat[0], 0.5), bench.Percentile(lat[1], 0.5))
}
