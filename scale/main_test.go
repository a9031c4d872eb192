package scale

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every cache,
// store, backplane and client made here is closed by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
