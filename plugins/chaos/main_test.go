package chaos_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine is left once every test closed
// what it opened.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
