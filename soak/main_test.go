package soak

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every cache,
// store, backplane and client the soak makes is closed by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
