package l2test_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/meml2"
)

// unreachableHarness makes meml2 stores, and "unreachable" ones that fail
// every call the way a client with no server does.
type unreachableHarness struct{}

func (unreachableHarness) MakeStore(context.Context, *testing.T) (l2.Store, error) {
	return meml2.New(nil), nil
}

func (unreachableHarness) MakeUnreachableStore(context.Context, *testing.T) (l2.Store, error) {
	s := meml2.New(nil)
	s.SetFault(meml2.Fault{Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), Delay: 10 * time.Millisecond})
	return s, nil
}

func TestRunWithUnreachableMaker(t *testing.T) {
	l2test.Run(t, unreachableHarness{})
}

// fakeHarness makes fakeStores with one deliberate bug (or none).
type fakeHarness struct{ bug string }

func (h fakeHarness) MakeStore(context.Context, *testing.T) (l2.Store, error) {
	return newFake(h.bug), nil
}

func (h fakeHarness) MakeUnreachableStore(context.Context, *testing.T) (l2.Store, error) {
	f := newFake(h.bug)
	f.unreachable = true
	return f, nil
}

func (fakeHarness) WriteRaw(_ context.Context, _ *testing.T, st l2.Store, key string, raw []byte, ttl time.Duration) error {
	f := st.(*fakeStore)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[f.key(key)] = fakeEntry{value: append([]byte{}, raw...), expires: time.Now().Add(ttl), foreign: true}
	return nil
}

func (fakeHarness) MakeWrongType(_ context.Context, _ *testing.T, st l2.Store, key string, ttl time.Duration) error {
	f := st.(*fakeStore)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[f.key(key)] = fakeEntry{expires: time.Now().Add(ttl), wrongType: true}
	return nil
}

// TestFakeWithoutBugsPasses shows that the fake store the next test breaks
// is correct when left alone, so each failure there is its bug's doing.
func TestFakeWithoutBugsPasses(t *testing.T) {
	l2test.Run(t, fakeHarness{})
}

// TestSuiteCatchesBrokenStores runs the suite, in a child process, against
// stores with one bug each, and checks that the subtest meant to catch the
// bug fails.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	for bug, subtest := range map[string]string{
		"retain-set":            "SetDoesNotRetainValue",
		"share-get":             "ReturnedSliceIsCallers",
		"ttl-in-microseconds":   "TTLExpiry",
		"empty-is-missing":      "EmptyValue",
		"key-ends-at-nul":       "BinaryKeys",
		"ignore-ctx":            "CancelledContext",
		"opaque-ctx-error":      "CancelledContext",
		"done-ctx-writes":       "CancelledContext",
		"late-ctx-opaque":       "CancelledDuringCall",
		"bad-ttl-transient":     "NonPositiveTTL",
		"ttl-overflows":         "HundredYearTTL",
		"foreign-is-error":      "ForeignValue",
		"foreign-is-miss":       "ForeignValue",
		"foreign-is-newer":      "ForeignValue",
		"wrong-type-transient":  "WrongType",
		"wrong-type-fails-many": "WrongType",
		"no-err-closed":         "UseAfterClose",
		"close-twice-errs":      "CloseIdempotent",
		"cond-equal-accepted":   "ConditionalStore",
		"cond-float64-compare":  "ConditionalStore",
		"many-empty-is-nil":     "MultiGetter",
		"many-wrong-order":      "MultiGetter",
		"unreachable-is-miss":   "Unreachable",
		"torn-writes":           "Concurrent",
	} {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenStoreHelper$/^"+subtest+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "L2TEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with bug %q:\n%s", bug, out)
			}
			if want := "--- FAIL: TestBrokenStoreHelper/" + subtest; !strings.Contains(string(out), want) {
				t.Fatalf("bug %q: no %q in the output:\n%s", bug, want, out)
			}
		})
	}
}

// TestBrokenStoreHelper runs the suite against a store with the bug named
// by $L2TEST_BUG; only TestSuiteCatchesBrokenStores runs it.
func TestBrokenStoreHelper(t *testing.T) {
	bug := os.Getenv("L2TEST_BUG")
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	l2test.Run(t, fakeHarness{bug: bug})
}

// fakeStore is a minimal l2.ConditionalStore and l2.MultiGetter with
// switchable bugs.
type fakeStore struct {
	bug         string
	unreachable bool

	mu      sync.Mutex
	closed  bool
	entries map[string]fakeEntry
}

type fakeEntry struct {
	value     []byte
	expires   time.Time
	version   int64
	foreign   bool // written by WriteRaw
	wrongType bool // made by MakeWrongType
}

// errFakeWrongType is the error of a read of a key of another type.
var errFakeWrongType = fmt.Errorf("fake: %w: WRONGTYPE", l2.ErrPermanent)

func newFake(bug string) *fakeStore {
	return &fakeStore{bug: bug, entries: make(map[string]fakeEntry)}
}

// begin checks what every call checks first; write says whether the call
// writes.
func (f *fakeStore) begin(ctx context.Context, write bool) error {
	if f.unreachable {
		return errors.New("fake: connection refused")
	}
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed && f.bug != "no-err-closed" {
		return l2.ErrClosed
	}
	if f.bug == "late-ctx-opaque" {
		// A client that notices a cancellation on its socket and says so
		// in words only.
		time.Sleep(time.Millisecond)
		if ctx.Err() != nil {
			return errors.New("fake: i/o timeout")
		}
	}
	switch {
	case ctx.Err() == nil, f.bug == "ignore-ctx", f.bug == "done-ctx-writes" && write:
		return nil
	case f.bug == "opaque-ctx-error":
		return errors.New("fake: " + ctx.Err().Error())
	}
	return ctx.Err()
}

// end returns the error of a write that went ahead: with the bug
// "done-ctx-writes", that of the ctx it should not have written with.
func (f *fakeStore) end(ctx context.Context) error {
	if f.bug == "done-ctx-writes" {
		return ctx.Err()
	}
	return nil
}

// checkTTL refuses a ttl that is not positive.
func (f *fakeStore) checkTTL(ttl time.Duration) error {
	if ttl > 0 {
		return nil
	}
	if f.bug == "bad-ttl-transient" {
		return fmt.Errorf("fake: ttl %v", ttl)
	}
	return fmt.Errorf("fake: ttl %v: %w", ttl, l2.ErrPermanent)
}

func (f *fakeStore) key(k string) string {
	if f.bug == "key-ends-at-nul" {
		k, _, _ = strings.Cut(k, "\x00")
	}
	return k
}

// load reads key; the caller holds f.mu.
func (f *fakeStore) load(k string) ([]byte, bool, error) {
	e, ok := f.entries[f.key(k)]
	if !ok || !time.Now().Before(e.expires) {
		return nil, false, nil
	}
	switch {
	case e.wrongType && f.bug == "wrong-type-transient":
		return nil, false, errors.New("fake: WRONGTYPE")
	case e.wrongType:
		return nil, false, errFakeWrongType
	case e.foreign && f.bug == "foreign-is-error":
		return nil, false, errors.New("fake: not an entry")
	case e.foreign && f.bug == "foreign-is-miss":
		return nil, false, nil
	case f.bug == "empty-is-missing" && len(e.value) == 0:
		return nil, false, nil
	case f.bug == "share-get":
		return e.value, true, nil
	}
	return append([]byte{}, e.value...), true, nil
}

func (f *fakeStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if f.bug == "unreachable-is-miss" && f.unreachable {
		return nil, false, nil
	}
	if err := f.begin(ctx, false); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load(key)
}

func (f *fakeStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := f.begin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		v, ok, err := f.load(k)
		switch {
		case errors.Is(err, errFakeWrongType) && f.bug != "wrong-type-fails-many":
		case err != nil:
			return nil, err
		case ok && !(f.bug == "many-empty-is-nil" && len(v) == 0):
			vals[i] = v
		}
	}
	if f.bug == "many-wrong-order" && len(vals) > 1 {
		vals[0], vals[1] = vals[1], vals[0]
	}
	return vals, nil
}

// store writes key; the caller holds f.mu.
func (f *fakeStore) store(key string, value []byte, ttl time.Duration, version int64) {
	if f.bug != "retain-set" {
		value = append([]byte{}, value...)
	}
	switch f.bug {
	case "ttl-in-microseconds":
		ttl /= 1000
	case "ttl-overflows":
		ttl *= 3 // in some finer unit
	}
	f.entries[f.key(key)] = fakeEntry{value: value, expires: time.Now().Add(ttl), version: version}
}

func (f *fakeStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := f.begin(ctx, true); err != nil {
		return err
	}
	if err := f.checkTTL(ttl); err != nil {
		return err
	}
	if f.bug == "torn-writes" {
		// Write the value in two halves, outside any lock: a reader can
		// see half of one value and half of another.
		half := len(value) / 2
		f.mu.Lock()
		f.store(key, value[:half], ttl, math.MinInt64)
		f.mu.Unlock()
		time.Sleep(time.Microsecond)
		f.mu.Lock()
		old, _, _ := f.load(key)
		f.store(key, append(old, value[half:]...), ttl, math.MinInt64)
		f.mu.Unlock()
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store(key, value, ttl, math.MinInt64)
	return f.end(ctx)
}

func (f *fakeStore) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	if err := f.begin(ctx, true); err != nil {
		return false, err
	}
	if err := f.checkTTL(ttl); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.entries[f.key(key)]; ok && time.Now().Before(old.expires) {
		newer := old.version < version
		switch {
		case f.bug == "cond-equal-accepted":
			newer = old.version <= version
		case f.bug == "cond-float64-compare":
			newer = float64(old.version) < float64(version)
		case old.foreign && f.bug == "foreign-is-newer":
			newer = false
		case old.foreign:
			newer = true
		}
		if !newer {
			return false, nil
		}
	}
	f.store(key, value, ttl, version)
	return true, f.end(ctx)
}

func (f *fakeStore) Delete(ctx context.Context, key string) error {
	if err := f.begin(ctx, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.entries, f.key(key))
	return f.end(ctx)
}

func (f *fakeStore) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed && f.bug == "close-twice-errs" {
		return errors.New("fake: already closed")
	}
	f.closed = true
	return nil
}
