package syncbuf_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stratacache/strata/internal/syncbuf"
)

// TestConcurrentWriteAndRead: writers and a reader at once (run with -race)
// lose nothing.
func TestConcurrentWriteAndRead(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(&b, i)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = b.String()
		}
	})
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("%d bytes written, want 400", n)
	}
}
