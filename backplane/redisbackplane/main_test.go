package redisbackplane_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every
// backplane, client and proxy the tests make is closed by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
