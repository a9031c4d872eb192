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
