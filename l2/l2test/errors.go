package l2test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
)

// This file checks that a store's errors say what happened, as l2.Classify
// sorts them: a done context, a permanent failure for one key, and no error
// at all for a value the store did not write.

// testCancelledContext checks that every method, given a context that is
// already done, returns promptly an error wrapping the context's error
// (classified l2.ClassCanceled), changes nothing, and that the store still
// works afterwards.
func (s *suite) testCancelledContext(t *testing.T) {
	st := s.store(t)
	k := s.key(t, "k") // the key of s.calls
	mustSet(t, st, k, []byte("before"), longTTL)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	for name, call := range s.calls(t, st) {
		for _, c := range []struct {
			ctx  context.Context
			want error
		}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
			var err error
			within(t, promptly, name+" with a done context", func() { err = call(c.ctx) })
			if !errors.Is(err, c.want) {
				t.Errorf("%s with a done context = %v, want an error wrapping %v", name, err, c.want)
			} else if class := l2.Classify(c.ctx, err); class != l2.ClassCanceled {
				t.Errorf("%s with a done context: %v is classified %v, want %v", name, err, class, l2.ClassCanceled)
			}
		}
	}
	wantValue(t, st, k, []byte("before"))
	after := s.key(t, "after")
	mustSet(t, st, after, []byte("still works"), longTTL)
	wantValue(t, st, after, []byte("still works"))
}

// testCancelledDuringCall cancels the context of every method, or lets its
// deadline pass, at moments from the call's start to well into it, and
// checks that a call that fails then returns an error wrapping the
// context's error, not some other error that says the same in words.
func (s *suite) testCancelledDuringCall(t *testing.T) {
	st := s.store(t)
	calls := s.calls(t, st)
	big := s.key(t, "big")
	value := randomBytes(1<<20, 2)
	calls["Set of 1 MiB"] = func(c context.Context) error { return st.Set(c, big, value, longTTL) }
	delays := []time.Duration{0, 20 * time.Microsecond, 100 * time.Microsecond, 500 * time.Microsecond, 2 * time.Millisecond, 10 * time.Millisecond}
	for name, call := range calls {
		for _, d := range delays {
			c, cancel := context.WithCancel(t.Context())
			timer := time.AfterFunc(d, cancel)
			var err error
			within(t, opTimeout, name, func() { err = call(c) })
			timer.Stop()
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s cancelled after %v = %v, want an error wrapping %v", name, d, err, context.Canceled)
			}

			c, cancel = context.WithTimeout(t.Context(), d)
			within(t, opTimeout, name, func() { err = call(c) })
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s with a deadline %v away = %v, want an error wrapping %v", name, d, err, context.DeadlineExceeded)
			}
		}
	}
}

// wantClass checks that err, returned by what, is classified want.
func wantClass(t *testing.T, what string, err error, want l2.ErrorClass) {
	t.Helper()
	if got := l2.Classify(context.Background(), err); got != want {
		t.Errorf("%s = %v, classified %v; want an error classified %v", what, err, got, want)
	}
}

// testNonPositiveTTL checks that a ttl that is not positive is refused with
// a permanent error (the same call fails the same way every time), and that
// nothing is stored.
func (s *suite) testNonPositiveTTL(t *testing.T) {
	st := s.store(t)
	k := s.key(t, "k")
	cond, isCond := st.(l2.ConditionalStore)
	for _, ttl := range []time.Duration{0, -time.Second, math.MinInt64} {
		wantClass(t, "Set with ttl "+ttl.String(), st.Set(ctx(t), k, []byte("v"), ttl), l2.ClassPermanent)
		if isCond {
			stored, err := cond.SetIfNewer(ctx(t), k, []byte("v"), ttl, 1)
			wantClass(t, "SetIfNewer with ttl "+ttl.String(), err, l2.ClassPermanent)
			if stored {
				t.Errorf("SetIfNewer with ttl %v reported stored", ttl)
			}
		}
	}
	wantMissing(t, st, k)
}

// foreignValues are the bytes the suite writes raw under keys: none is a
// strata envelope, and none starts like any framing an adapter adds.
var foreignValues = map[string][]byte{
	"text":   []byte("hello"),
	"empty":  {},
	"binary": []byte("\x00\xff\xfe not a strata entry, and longer than a header or two"),
}

// testForeignValue checks what a store does with a value it did not write:
// Get and GetMany return it, found, with its bytes as written (not an
// error: the store is fine; not a miss: core would not count it as
// corrupt), those bytes are no envelope to core, and SetIfNewer replaces
// the value as older than any version (Set when the store has no
// SetIfNewer).
func (s *suite) testForeignValue(t *testing.T) {
	rw, ok := s.h.(RawWriter)
	if !ok {
		t.Skipf("%T does not implement l2test.RawWriter", s.h)
	}
	st := s.store(t)
	good, missing := s.key(t, "good"), s.key(t, "missing")
	mustSet(t, st, good, []byte("good"), longTTL)
	for name, raw := range foreignValues {
		k := s.key(t, name)
		if err := rw.WriteRaw(ctx(t), t, st, k, raw, longTTL); err != nil {
			t.Fatalf("WriteRaw(%q): %v", k, err)
		}
		v, found, err := st.Get(ctx(t), k)
		switch {
		case err != nil:
			t.Errorf("Get of a foreign %s value = %v (classified %v), want its bytes, found", name, err, l2.Classify(ctx(t), err))
		case !found:
			t.Errorf("Get of a foreign %s value: a miss, want its bytes, found", name)
		case !bytes.Equal(v, raw):
			t.Errorf("Get of a foreign %s value = %q, want %q as written", name, short(v), short(raw))
		}
		if _, err := l2.DecodeEnvelope(v); l2.Classify(ctx(t), err) != l2.ClassCorrupt {
			t.Errorf("DecodeEnvelope(%q) = %v: want an error classified corrupt", short(v), err)
		}
		if mg, ok := st.(l2.MultiGetter); ok {
			keys := []string{k, good, missing}
			got, err := mg.GetMany(ctx(t), keys)
			if err != nil {
				t.Errorf("GetMany with a foreign %s value = %v (classified %v), want the values", name, err, l2.Classify(ctx(t), err))
			} else {
				checkMany(t, keys, got, [][]byte{raw, []byte("good"), nil})
			}
		}
		if cond, ok := st.(l2.ConditionalStore); ok {
			stored, err := cond.SetIfNewer(ctx(t), k, []byte("mine"), longTTL, math.MinInt64+1)
			if err != nil || !stored {
				t.Errorf("SetIfNewer over a foreign %s value = %v, %v; want stored (older than any version)", name, stored, err)
			}
		} else {
			mustSet(t, st, k, []byte("mine"), longTTL)
		}
		wantValue(t, st, k, []byte("mine"))
	}
}

// testWrongType checks what a store does with a key that holds a value of
// another type: Get fails for good (l2.ClassPermanent) without a value;
// GetMany answers it as missing and the other keys as usual; Delete removes
// it; Set and SetIfNewer replace it, or fail for good.
func (s *suite) testWrongType(t *testing.T) {
	wm, ok := s.h.(WrongTypeMaker)
	if !ok {
		t.Skipf("%T does not implement l2test.WrongTypeMaker", s.h)
	}
	st := s.store(t)
	k, good := s.key(t, "k"), s.key(t, "good")
	mustSet(t, st, good, []byte("good"), longTTL)
	makeWrongType := func() {
		t.Helper()
		if err := wm.MakeWrongType(ctx(t), t, st, k, longTTL); err != nil {
			t.Fatalf("MakeWrongType(%q): %v", k, err)
		}
	}

	makeWrongType()
	v, found, err := st.Get(ctx(t), k)
	wantClass(t, "Get of a key of another type", err, l2.ClassPermanent)
	if found || v != nil {
		t.Errorf("Get of a key of another type = %q, found=%v: want no value", v, found)
	}
	if mg, ok := st.(l2.MultiGetter); ok {
		keys := []string{k, good}
		got, err := mg.GetMany(ctx(t), keys)
		if err != nil {
			t.Errorf("GetMany with a key of another type = %v (classified %v), want it missing and the others read", err, l2.Classify(ctx(t), err))
		} else {
			checkMany(t, keys, got, [][]byte{nil, []byte("good")})
		}
	}
	mustDelete(t, st, k)
	wantMissing(t, st, k)

	makeWrongType()
	if err := st.Set(ctx(t), k, []byte("set"), longTTL); err == nil {
		wantValue(t, st, k, []byte("set"))
	} else {
		wantClass(t, "Set over a key of another type", err, l2.ClassPermanent)
	}
	if cond, ok := st.(l2.ConditionalStore); ok {
		makeWrongType()
		stored, err := cond.SetIfNewer(ctx(t), k, []byte("set if newer"), longTTL, 1)
		switch {
		case err != nil:
			wantClass(t, "SetIfNewer over a key of another type", err, l2.ClassPermanent)
		case !stored:
			t.Errorf("SetIfNewer over a key of another type = false, nil: want it replaced, or a permanent error")
		default:
			wantValue(t, st, k, []byte("set if newer"))
		}
	}
	wantValue(t, st, good, []byte("good"))
}
