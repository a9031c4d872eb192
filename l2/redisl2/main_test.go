package redisl2_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every store and
// client the tests make is closed by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
