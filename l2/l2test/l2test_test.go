package l2test_test

import (
	"context"
	"errors"
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
		"retain-set":           "SetDoesNotRetainValue",
		"share-get":            "ReturnedSliceIsCallers",
		"ttl-in-microseconds":  "TTLExpiry",
		"empty-is-missing":     "EmptyValue",
		"key-ends-at-nul":      "BinaryKeys",
		"ignore-ctx":           "CancelledContext",
		"no-err-closed":        "UseAfterClose",
		"close-twice-errs":     "CloseIdempotent",
		"cond-equal-accepted":  "ConditionalStore",
		"cond-float64-compare": "ConditionalStore",
		"many-empty-is-nil":    "MultiGetter",
		"many-wrong-order":     "MultiGetter",
		"unreachable-is-miss":  "Unreachable",
		"torn-writes":          "Concurrent",
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
	value   []byte
	expires time.Time
	version int64
}

func newFake(bug string) *fakeStore {
	return &fakeStore{bug: bug, entries: make(map[string]fakeEntry)}
}

func (f *fakeStore) begin(ctx context.Context) error {
	if f.unreachable {
		return errors.New("fake: connection refused")
	}
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed && f.bug != "no-err-closed" {
		return l2.ErrClosed
	}
	if f.bug != "ignore-ctx" {
		return ctx.Err()
	}
	return nil
}

func (f *fakeStore) key(k string) string {
	if f.bug == "key-ends-at-nul" {
		k, _, _ = strings.Cut(k, "\x00")
	}
	return k
}

func (f *fakeStore) load(k string) ([]byte, bool) {
	e, ok := f.entries[f.key(k)]
	if !ok || !time.Now().Before(e.expires) {
		return nil, false
	}
	if f.bug == "empty-is-missing" && len(e.value) == 0 {
		return nil, false
	}
	if f.bug == "share-get" {
		return e.value, true
	}
	return append([]byte{}, e.value...), true
}

func (f *fakeStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if f.bug == "unreachable-is-miss" && f.unreachable {
		return nil, false, nil
	}
	if err := f.begin(ctx); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.load(key)
	return v, ok, nil
}

func (f *fakeStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := f.begin(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		if v, ok := f.load(k); ok && !(f.bug == "many-empty-is-nil" && len(v) == 0) {
			vals[i] = v
		}
	}
	if f.bug == "many-wrong-order" && len(vals) > 1 {
		vals[0], vals[1] = vals[1], vals[0]
	}
	return vals, nil
}

func (f *fakeStore) store(key string, value []byte, ttl time.Duration, version int64) {
	if f.bug != "retain-set" {
		value = append([]byte{}, value...)
	}
	if f.bug == "ttl-in-microseconds" {
		ttl /= 1000
	}
	f.entries[f.key(key)] = fakeEntry{value: value, expires: time.Now().Add(ttl), version: version}
}

func (f *fakeStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := f.begin(ctx); err != nil {
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
		old, _ := f.load(key)
		f.store(key, append(old, value[half:]...), ttl, math.MinInt64)
		f.mu.Unlock()
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store(key, value, ttl, math.MinInt64)
	return nil
}

func (f *fakeStore) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	if err := f.begin(ctx); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.entries[f.key(key)]; ok && time.Now().Before(old.expires) {
		newer := old.version < version
		switch f.bug {
		case "cond-equal-accepted":
			newer = old.version <= version
		case "cond-float64-compare":
			newer = float64(old.version) < float64(version)
		}
		if !newer {
			return false, nil
		}
	}
	f.store(key, value, ttl, version)
	return true, nil
}

func (f *fakeStore) Delete(ctx context.Context, key string) error {
	if err := f.begin(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.entries, f.key(key))
	return nil
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
