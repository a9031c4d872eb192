package bench

import (
	"strings"
	"testing"
)

// BenchmarkL1Hit: one warm key read by every goroutine, strata next to its
// peers; run with -cpu 1,2.
func BenchmarkL1Hit(b *testing.B) {
	for _, hc := range L1HitCases() {
		b.Run(strings.NewReplacer(" ", "_", ",", "").Replace(hc.Name+"/"+hc.API), hc.Benchmark)
	}
}

// TestL1HitCasesRead: every case opens, reads the warm key right, and
// releases its cache (goleak checks the release).
func TestL1HitCasesRead(t *testing.T) {
	refs := 0
	for _, hc := range L1HitCases() {
		t.Run(hc.Name+" "+hc.API, func(t *testing.T) {
			read, release, err := hc.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			for range 3 {
				if err := read(); err != nil {
					t.Fatal(err)
				}
			}
		})
		if hc.Reference {
			refs++
		}
	}
	if refs != 1 {
		t.Errorf("%d reference cases, want 1", refs)
	}
}

// BenchmarkMiss: a new key per call, read through a trivial source, strata
// next to its peers in the same run.
func BenchmarkMiss(b *testing.B) {
	for _, mc := range MissCases() {
		b.Run(strings.NewReplacer(" ", "_", ",", "").Replace(mc.Name+"/"+mc.API), mc.Benchmark)
	}
}

// TestMissCasesMiss: every case opens, calls its source once per new key,
// returns the source's value, and releases its cache (goleak checks the
// release).
func TestMissCasesMiss(t *testing.T) {
	refs := 0
	keys := MissKeys()
	for _, mc := range MissCases() {
		t.Run(mc.Name+" "+mc.API, func(t *testing.T) {
			calls := 0
			miss, release, err := mc.Open(func() User { calls++; return user42 })
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			for i, key := range keys[:3] {
				if err := miss(key); err != nil {
					t.Fatalf("miss %q: %v", key, err)
				}
				if calls != i+1 {
					t.Fatalf("after %d misses the source was called %d times, want %d", i+1, calls, i+1)
				}
			}
		})
		if mc.Reference {
			refs++
		}
	}
	if refs != 1 {
		t.Errorf("%d reference cases, want 1", refs)
	}
	if len(keys) != missKeys || keys[0] == keys[1] {
		t.Errorf("MissKeys: %d keys starting %q, %q; want %d distinct", len(keys), keys[0], keys[1], missKeys)
	}
}
