package l2test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
)

// Harness makes the stores the suite tests.
type Harness interface {
	// MakeStore returns a new, open store on the system under test. The
	// suite calls it once per subtest and closes the store when the subtest
	// ends. Stores made by one Harness may share their data (all talk to
	// one server) or not: the suite relies on neither.
	MakeStore(ctx context.Context, t *testing.T) (l2.Store, error)
}

// UnreachableMaker is a Harness that can also make a store pointed at a
// server that is not there (a closed port, say). When the Harness implements
// it, Run checks that every call on such a store returns an error within a
// few seconds, even with a context that has no deadline.
type UnreachableMaker interface {
	MakeUnreachableStore(ctx context.Context, t *testing.T) (l2.Store, error)
}

// RawWriter is a Harness that can write bytes under a key of a store the
// way a foreign writer would (redis-cli SET key hello): as they are, without
// the framing the store adds to the values it writes itself. When the
// Harness implements it, Run checks what l2.Store promises about such a
// value: Get and GetMany return it, found, with its bytes as written (which
// core's l2.DecodeEnvelope then rejects as corrupt), and SetIfNewer (or Set)
// replaces it.
type RawWriter interface {
	// WriteRaw stores raw under key of st, a store the Harness made, for
	// ttl.
	WriteRaw(ctx context.Context, t *testing.T, st l2.Store, key string, raw []byte, ttl time.Duration) error
}

// WrongTypeMaker is a Harness that can make a key of a store hold a value
// of another type than the store's (a Redis list). When the Harness
// implements it, Run checks that Get of such a key is an error wrapping
// l2.ErrPermanent, that GetMany answers it as missing and the batch's other
// keys as usual, that Delete removes it, and that Set and SetIfNewer either
// replace it or fail with an error wrapping l2.ErrPermanent.
type WrongTypeMaker interface {
	// MakeWrongType makes key of st, a store the Harness made, hold a value
	// of another type for ttl.
	MakeWrongType(ctx context.Context, t *testing.T, st l2.Store, key string, ttl time.Duration) error
}

// Time limits of the suite. They are generous: the suite checks that calls
// do not hang, never how fast they are.
const (
	// opTimeout bounds each call on a healthy store.
	opTimeout = 10 * time.Second
	// promptly bounds calls that must fail at once (done ctx, after Close).
	promptly = 5 * time.Second
	// failFast bounds calls on an unreachable store.
	failFast = 10 * time.Second
	// longTTL is the TTL of entries the suite does not expect to expire.
	longTTL = time.Minute
	// shortTTL is the TTL of entries the suite waits to see expire; real
	// servers count whole milliseconds or seconds.
	shortTTL = 1500 * time.Millisecond
	// expiryDeadline bounds the wait for an entry with shortTTL to expire.
	expiryDeadline = 15 * time.Second
)

// Run runs the conformance suite against the stores h makes, as subtests of
// t. See the package documentation for what it checks.
func Run(t *testing.T, h Harness) {
	t.Helper()
	s := &suite{h: h, prefix: "l2test:" + rand.Text()[:16] + ":"}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"GetMissing", s.testGetMissing},
		{"SetGet", s.testSetGet},
		{"Overwrite", s.testOverwrite},
		{"Delete", s.testDelete},
		{"TTLExpiry", s.testTTLExpiry},
		{"BinaryKeys", s.testBinaryKeys},
		{"BinaryValues", s.testBinaryValues},
		{"EmptyValue", s.testEmptyValue},
		{"LargeValue", s.testLargeValue},
		{"ReturnedSliceIsCallers", s.testReturnedSliceIsCallers},
		{"SetDoesNotRetainValue", s.testSetDoesNotRetain},
		{"Concurrent", s.testConcurrent},
		{"CancelledContext", s.testCancelledContext},
		{"CancelledDuringCall", s.testCancelledDuringCall},
		{"NonPositiveTTL", s.testNonPositiveTTL},
		{"HundredYearTTL", s.testHundredYearTTL},
		{"ForeignValue", s.testForeignValue},
		{"WrongType", s.testWrongType},
		{"UseAfterClose", s.testUseAfterClose},
		{"CloseIdempotent", s.testCloseIdempotent},
		{"ConditionalStore", s.testConditional},
		{"MultiGetter", s.testMultiGetter},
		{"Unreachable", s.testUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

// suite holds what the subtests share: the harness and the run's key
// prefix.
type suite struct {
	h      Harness
	prefix string
}

// store makes a store for one subtest and closes it when the subtest ends.
func (s *suite) store(t *testing.T) l2.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	st, err := s.h.MakeStore(ctx, t)
	if err != nil {
		t.Fatalf("MakeStore: %v", err)
	}
	if st == nil {
		t.Fatal("MakeStore returned a nil store and no error")
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// key returns a key unique to this run and subtest.
func (s *suite) key(t *testing.T, name string) string {
	return s.prefix + t.Name() + ":" + name
}

// ctx returns a context for one call on a healthy store.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return c
}

func mustSet(t *testing.T, st l2.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := st.Set(ctx(t), key, value, ttl); err != nil {
		t.Fatalf("Set(%q, %d bytes, %v): %v", key, len(value), ttl, err)
	}
}

func mustGet(t *testing.T, st l2.Store, key string) ([]byte, bool) {
	t.Helper()
	v, found, err := st.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !found && v != nil {
		t.Errorf("Get(%q) = %q, found=false: want a nil value with found=false", key, short(v))
	}
	return v, found
}

func mustDelete(t *testing.T, st l2.Store, key string) {
	t.Helper()
	if err := st.Delete(ctx(t), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

// wantValue checks that key holds want.
func wantValue(t *testing.T, st l2.Store, key string, want []byte) {
	t.Helper()
	got, found := mustGet(t, st, key)
	if !found {
		t.Errorf("Get(%q): not found, want %q", key, short(want))
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Get(%q) = %q, want %q", key, short(got), short(want))
	}
}

// wantMissing checks that key holds nothing.
func wantMissing(t *testing.T, st l2.Store, key string) {
	t.Helper()
	if got, found := mustGet(t, st, key); found {
		t.Errorf("Get(%q) = %q, found: want missing", key, short(got))
	}
}

// within runs f and fails t if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// short formats a value for an error message without flooding the log.
func short(b []byte) string {
	if len(b) <= 64 {
		return string(b)
	}
	return fmt.Sprintf("%s...(%d bytes)", b[:64], len(b))
}
