package l2test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
)

// testConditional checks l2.ConditionalStore: a missing key is stored, an
// older or equal version is refused and leaves the value alone, a newer one
// replaces it, and versions one nanosecond apart at today's Unix time are
// told apart (a store that compares them as float64 would not).
func (s *suite) testConditional(t *testing.T) {
	st := s.store(t)
	cond, ok := st.(l2.ConditionalStore)
	if !ok {
		t.Skipf("%T does not implement l2.ConditionalStore", st)
	}
	k := s.key(t, "k")
	setIfNewer := func(value string, version int64, want bool) {
		t.Helper()
		stored, err := cond.SetIfNewer(ctx(t), k, []byte(value), longTTL, version)
		if err != nil {
			t.Fatalf("SetIfNewer(%q, version %d): %v", value, version, err)
		}
		if stored != want {
			t.Errorf("SetIfNewer(%q, version %d) = %v, want %v", value, version, stored, want)
		}
	}
	setIfNewer("v100", 100, true) // missing key
	wantValue(t, st, k, []byte("v100"))
	setIfNewer("v50", 50, false) // older
	wantValue(t, st, k, []byte("v100"))
	setIfNewer("v100 again", 100, false) // equal
	wantValue(t, st, k, []byte("v100"))
	setIfNewer("v200", 200, true) // newer
	wantValue(t, st, k, []byte("v200"))

	const base = int64(1_700_000_000_000_000_000) // 2023, in Unix ns: beyond float64's 2^53
	setIfNewer("base+1", base+1, true)
	setIfNewer("base", base, false)
	setIfNewer("base+1 again", base+1, false)
	wantValue(t, st, k, []byte("base+1"))
	setIfNewer("base+2", base+2, true)
	wantValue(t, st, k, []byte("base+2"))

	mustDelete(t, st, k)
	setIfNewer("v1 after delete", 1, true)
	wantValue(t, st, k, []byte("v1 after delete"))

	// Binary and empty values go through SetIfNewer intact.
	setIfNewer("\x00\xff\xfe", 2, true)
	wantValue(t, st, k, []byte("\x00\xff\xfe"))
	setIfNewer("", 3, true)
	if v, found := mustGet(t, st, k); !found || len(v) != 0 {
		t.Errorf("Get after SetIfNewer of an empty value = %q, found=%v: want empty, found", v, found)
	}
}

// testMultiGetter checks l2.MultiGetter: one value per key in order, nil for
// a missing key, a non-nil empty slice for an empty value, duplicates
// answered at each position, and no keys answered with no values.
func (s *suite) testMultiGetter(t *testing.T) {
	st := s.store(t)
	mg, ok := st.(l2.MultiGetter)
	if !ok {
		t.Skipf("%T does not implement l2.MultiGetter", st)
	}
	a, b, empty, missing := s.key(t, "a"), s.key(t, "b"), s.key(t, "empty"), s.key(t, "missing")
	mustSet(t, st, a, []byte("va"), longTTL)
	mustSet(t, st, b, []byte("\x00vb\xff"), longTTL)
	mustSet(t, st, empty, []byte{}, longTTL)

	keys := []string{b, missing, a, empty, a}
	want := [][]byte{[]byte("\x00vb\xff"), nil, []byte("va"), {}, []byte("va")}
	got, err := mg.GetMany(ctx(t), keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	checkMany(t, keys, got, want)

	for _, keys := range [][]string{nil, {}} {
		got, err := mg.GetMany(ctx(t), keys)
		if err != nil {
			t.Errorf("GetMany(%#v): %v", keys, err)
		} else if len(got) != 0 {
			t.Errorf("GetMany(%#v) = %q, want no values", keys, got)
		}
	}

	// A larger batch, every other key missing.
	const n = 100
	keys, want = make([]string, n), make([][]byte, n)
	for i := range n {
		keys[i] = s.key(t, fmt.Sprintf("batch-%d", i))
		if i%2 == 0 {
			want[i] = []byte(keys[i])
			mustSet(t, st, keys[i], want[i], longTTL)
		}
	}
	got, err = mg.GetMany(ctx(t), keys)
	if err != nil {
		t.Fatalf("GetMany of %d keys: %v", n, err)
	}
	checkMany(t, keys, got, want)
}

func checkMany(t *testing.T, keys []string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("GetMany of %d keys returned %d values", len(want), len(got))
	}
	for i := range want {
		switch {
		case want[i] == nil && got[i] != nil:
			t.Errorf("GetMany: value %d (%q) = %q, want nil (missing)", i, keys[i], got[i])
		case want[i] != nil && got[i] == nil:
			t.Errorf("GetMany: value %d (%q) = nil, want %q", i, keys[i], want[i])
		case !bytes.Equal(got[i], want[i]):
			t.Errorf("GetMany: value %d (%q) = %q, want %q", i, keys[i], got[i], want[i])
		}
	}
}

// testUnreachable checks that a store pointed at a server that is not there
// fails every call within failFast, even when the context has no deadline,
// and that a Get there is an error, not a miss.
func (s *suite) testUnreachable(t *testing.T) {
	um, ok := s.h.(UnreachableMaker)
	if !ok {
		t.Skipf("%T does not implement l2test.UnreachableMaker", s.h)
	}
	var st l2.Store
	var err error
	within(t, failFast, "MakeUnreachableStore", func() { st, err = um.MakeUnreachableStore(t.Context(), t) })
	if err != nil {
		t.Fatalf("MakeUnreachableStore: %v", err)
	}
	if st == nil {
		t.Fatal("MakeUnreachableStore returned a nil store and no error")
	}
	defer func() {
		within(t, failFast, "Close of an unreachable store", func() { _ = st.Close() })
	}()
	// A context without a deadline: the store must bound the wait itself.
	// The safety timeout only keeps a hanging store from blocking forever.
	safety, cancel := context.WithTimeout(context.Background(), 3*failFast)
	defer cancel()
	for name, call := range s.calls(t, st) {
		start := time.Now()
		var err error
		within(t, failFast, name+" on an unreachable store", func() { err = call(safety) })
		if err == nil {
			t.Errorf("%s on an unreachable store succeeded, want an error", name)
		} else if errors.Is(err, context.DeadlineExceeded) && safety.Err() != nil {
			t.Errorf("%s on an unreachable store waited for the context (%v)", name, time.Since(start))
		}
	}
}
