package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/core"
)

// TestMain fails the package if any goroutine is left once every test closed
// its caches.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// newCache makes a cache closed at the end of the test.
func newCache(t testing.TB, o core.Options) *core.Cache {
	t.Helper()
	c, err := core.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// counter is a factory that counts its calls and returns the count.
type counter struct {
	mu    sync.Mutex
	calls int
}

func (c *counter) factory(context.Context, *core.FactoryContext[int]) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.calls, nil
}

func (c *counter) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func constant[T any](v T) core.Factory[T] {
	return func(context.Context, *core.FactoryContext[T]) (T, error) { return v, nil }
}

func failing[T any](err error) core.Factory[T] {
	return func(context.Context, *core.FactoryContext[T]) (T, error) {
		var zero T
		return zero, err
	}
}

func mustGetOrSet[T any](t *testing.T, c *core.Cache, key string, f core.Factory[T], opts ...core.EntryOption) T {
	t.Helper()
	v, err := core.GetOrSet(context.Background(), c, key, f, opts...)
	if err != nil {
		t.Fatalf("GetOrSet(%q): %v", key, err)
	}
	return v
}
