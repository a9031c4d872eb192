package stats_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine is left once every test closed
// its caches.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
