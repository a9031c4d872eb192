package main

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEveryStepBehavesAsPrinted runs the example as `go run
// ./examples/multinode` does, on its defaults, without L2, and on real
// servers (where the fault steps are skipped): run fails at the first claim
// that does not hold. Nothing ran it when version floors and the expired
// replay of queued L2 writes changed what a node reads after an outage; it
// failed both ways, expecting C's read after the replay from L2 and a
// sequence gap after B's reconnection.
func TestEveryStepBehavesAsPrinted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		l2, bp func(t *testing.T) string
		// skipped is the number of steps skipped: step 4 without L2, the
		// fault steps 4 and 5 on servers.
		skipped int
	}{
		{name: "defaults", l2: fixed(defaultL2), bp: fixed(defaultBackplane)},
		{name: "no L2", l2: fixed(""), bp: fixed(defaultBackplane), skipped: 1},
		{name: "Redis", l2: redisURL, bp: redisURL, skipped: 2},
		{name: "NATS", l2: natsURL, bp: natsURL, skipped: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if err := run(context.Background(), tc.l2(t), tc.bp(t), &out); err != nil {
				t.Fatalf("%v\nafter printing:\n%s", err, out.String())
			}
			printed := out.String()
			if !strings.Contains(printed, "Every step behaved as described.") {
				t.Errorf("run returned nil without finishing:\n%s", printed)
			}
			if n := strings.Count(printed, "skipped:"); n != tc.skipped {
				t.Errorf("%d steps skipped, want %d:\n%s", n, tc.skipped, printed)
			}
		})
	}
}

func fixed(url string) func(*testing.T) string { return func(*testing.T) string { return url } }

func redisURL(t *testing.T) string { return "redis://" + redistest.Addr(t) }

func natsURL(t *testing.T) string { return natstest.URL(t) }
