package soak

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// sample is one reading of the process during the load.
type sample struct {
	at         time.Duration // since the load started
	heap       uint64        // runtime.MemStats.HeapAlloc right after runtime.GC
	goroutines int           // runtime.NumGoroutine
	ops        uint64        // calls made so far
}

// The flatness criteria (docs/hardening.md states them too). The first
// warmupFraction of the samples is warm-up (L1 filling, pools and buffers
// growing) and ignored; of the rest, the last quarter is compared with the
// first quarter.
const (
	warmupFraction = 1.0 / 3
	// heapGrowthPercent and heapSlack: the median heap of the last
	// quarter may exceed that of the first by at most heapGrowthPercent,
	// plus heapSlack for the noise of a heap of a few MiB (calls in
	// flight, connection buffers).
	heapGrowthPercent = 20
	heapSlack         = 2 << 20
	// goroutineSlack: the most goroutines seen in the last quarter may
	// exceed the most seen in the first by at most this many (background
	// factories, L2 writes and publishes in flight).
	goroutineSlack = 10
	// minSteadySamples is the fewest samples after warm-up that can show
	// a trend.
	minSteadySamples = 8
)

// checkFlat returns why samples show the heap or the goroutine count
// growing, or nil when both are flat by the criteria above.
func checkFlat(samples []sample) error {
	steady := samples[int(float64(len(samples))*warmupFraction):]
	if len(steady) < minSteadySamples {
		return fmt.Errorf("%d samples after warm-up, need at least %d: run longer or sample more often", len(steady), minSteadySamples)
	}
	q := len(steady) / 4
	first, last := steady[:q], steady[len(steady)-q:]
	var problems []string
	h0, h1 := medianHeap(first), medianHeap(last)
	if limit := h0 + h0*heapGrowthPercent/100 + heapSlack; h1 > limit {
		problems = append(problems, fmt.Sprintf("heap grew: median %s in the last quarter, %s in the first (limit %s: +%d%% +%s)",
			mib(h1), mib(h0), mib(limit), heapGrowthPercent, mib(heapSlack)))
	}
	g0, g1 := maxGoroutines(first), maxGoroutines(last)
	if g1 > g0+goroutineSlack {
		problems = append(problems, fmt.Sprintf("goroutines grew: at most %d in the last quarter, %d in the first (limit +%d)", g1, g0, goroutineSlack))
	}
	if problems != nil {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func medianHeap(s []sample) uint64 {
	h := make([]uint64, len(s))
	for i := range s {
		h[i] = s[i].heap
	}
	slices.Sort(h)
	return h[len(h)/2]
}

func maxGoroutines(s []sample) int {
	m := 0
	for _, x := range s {
		m = max(m, x.goroutines)
	}
	return m
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// series makes n samples whose heap and goroutine count follow f.
func series(n int, f func(i int) (heap uint64, goroutines int)) []sample {
	s := make([]sample, n)
	for i := range s {
		s[i].heap, s[i].goroutines = f(i)
		s[i].at = time.Duration(i) * time.Second
	}
	return s
}

func TestCheckFlat(t *testing.T) {
	const base = 20 << 20
	tests := []struct {
		name    string
		samples []sample
		want    string // substring of the error; "" for none
	}{
		{"flat", series(40, func(int) (uint64, int) { return base, 50 }), ""},
		{"noisy but flat", series(40, func(i int) (uint64, int) { return base + uint64(i%3)*(3<<20), 50 + i%7 }), ""},
		{"big warm-up then flat", series(40, func(i int) (uint64, int) {
			if i < 10 {
				return uint64(i) * base, 20 + 5*i
			}
			return base, 70
		}), ""},
		{"heap leak", series(40, func(i int) (uint64, int) { return base + uint64(i)*(1<<20), 50 }), "heap grew"},
		{"slow heap leak", series(120, func(i int) (uint64, int) { return base + uint64(i)*(200<<10), 50 }), "heap grew"},
		{"goroutine leak", series(40, func(i int) (uint64, int) { return base, 50 + i }), "goroutines grew"},
		{"both", series(40, func(i int) (uint64, int) { return base + uint64(i)*(1<<20), 50 + i }), "; goroutines grew"},
		{"too short", series(8, func(int) (uint64, int) { return base, 50 }), "need at least 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkFlat(tt.samples)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkFlat: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("checkFlat: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
