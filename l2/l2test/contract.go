package l2test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
)

func (s *suite) testGetMissing(t *testing.T) {
	st := s.store(t)
	wantMissing(t, st, s.key(t, "never-set"))
}

func (s *suite) testSetGet(t *testing.T) {
	st := s.store(t)
	k := s.key(t, "k")
	mustSet(t, st, k, []byte("hello"), longTTL)
	wantValue(t, st, k, []byte("hello"))
	// Reading does not consume.
	wantValue(t, st, k, []byte("hello"))
	// A key that differs only by a suffix is another key.
	wantMissing(t, st, k+"x")
}

func (s *suite) testOverwrite(t *testing.T) {
	st := s.store(t)
	k := s.key(t, "k")
	mustSet(t, st, k, []byte("first value, longer"), longTTL)
	mustSet(t, st, k, []byte("second"), longTTL)
	wantValue(t, st, k, []byte("second"))
}

func (s *suite) testDelete(t *testing.T) {
	st := s.store(t)
	k, other := s.key(t, "k"), s.key(t, "other")
	mustSet(t, st, k, []byte("v"), longTTL)
	mustSet(t, st, other, []byte("w"), longTTL)
	mustDelete(t, st, k)
	wantMissing(t, st, k)
	wantValue(t, st, other, []byte("w"))
	// Deleting a missing key, or the same key twice, is not an error.
	mustDelete(t, st, k)
	mustDelete(t, st, s.key(t, "never-set"))
	// A deleted key can be set again.
	mustSet(t, st, k, []byte("again"), longTTL)
	wantValue(t, st, k, []byte("again"))
}

// testTTLExpiry waits, in real time, for an entry with a short TTL to
// expire, and checks that entries with a long TTL, or whose short TTL was
// replaced by a long one, do not.
func (s *suite) testTTLExpiry(t *testing.T) {
	st := s.store(t)
	shortKey, long, extended := s.key(t, "short"), s.key(t, "long"), s.key(t, "extended")
	mustSet(t, st, long, []byte("long"), longTTL)
	mustSet(t, st, extended, []byte("extended-1"), shortTTL)
	mustSet(t, st, extended, []byte("extended-2"), longTTL) // Set replaces the TTL too
	start := time.Now()
	mustSet(t, st, shortKey, []byte("short"), shortTTL)
	v, found := mustGet(t, st, shortKey)
	if elapsed := time.Since(start); !found && elapsed < shortTTL/2 {
		t.Fatalf("Get(%q) %v after Set with ttl %v: not found", shortKey, elapsed, shortTTL)
	} else if found && !bytes.Equal(v, []byte("short")) {
		t.Fatalf("Get(%q) = %q, want %q", shortKey, v, "short")
	}

	cond, isCond := st.(l2.ConditionalStore)
	condKey := s.key(t, "conditional")
	if isCond {
		if _, err := cond.SetIfNewer(ctx(t), condKey, []byte("v100"), shortTTL, 100); err != nil {
			t.Fatalf("SetIfNewer(%q, version 100, ttl %v): %v", condKey, shortTTL, err)
		}
	}

	deadline := time.Now().Add(expiryDeadline)
	for {
		if _, found := mustGet(t, st, shortKey); !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get(%q) still finds an entry set with ttl %v after %v", shortKey, shortTTL, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < shortTTL/2 {
		t.Errorf("entry with ttl %v expired after only %v", shortTTL, elapsed)
	}
	wantValue(t, st, long, []byte("long"))
	wantValue(t, st, extended, []byte("extended-2"))

	if isCond {
		// An expired entry is no entry: its version no longer guards it.
		deadline := time.Now().Add(expiryDeadline)
		for {
			if _, found := mustGet(t, st, condKey); !found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Get(%q) still finds an entry stored by SetIfNewer with ttl %v", condKey, shortTTL)
			}
			time.Sleep(100 * time.Millisecond)
		}
		stored, err := cond.SetIfNewer(ctx(t), condKey, []byte("v50"), longTTL, 50)
		if err != nil {
			t.Fatalf("SetIfNewer(%q, version 50) after expiry: %v", condKey, err)
		}
		if !stored {
			t.Errorf("SetIfNewer(%q, version 50) over an expired version 100 = false, want true", condKey)
		}
		wantValue(t, st, condKey, []byte("v50"))
	}
}

// hundredYears is the longest TTL core passes: it clamps every duration to
// it, meaning "forever".
const hundredYears = 100 * 365 * 24 * time.Hour

// testHundredYearTTL checks that the longest TTL core passes is taken, by
// Set and by SetIfNewer, and does not overflow into an expired entry. The
// keys are deleted at the end, not left on the server for a century.
func (s *suite) testHundredYearTTL(t *testing.T) {
	st := s.store(t)
	k, condKey := s.key(t, "set"), s.key(t, "set-if-newer")
	t.Cleanup(func() { // before the store's Close: cleanups run last first
		c, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_ = st.Delete(c, k)
		_ = st.Delete(c, condKey)
	})
	mustSet(t, st, k, []byte("forever"), hundredYears)
	wantValue(t, st, k, []byte("forever"))
	if cond, ok := st.(l2.ConditionalStore); ok {
		stored, err := cond.SetIfNewer(ctx(t), condKey, []byte("forever"), hundredYears, 1)
		if err != nil || !stored {
			t.Fatalf("SetIfNewer(%q, ttl %v) = %v, %v; want stored", condKey, hundredYears, stored, err)
		}
		wantValue(t, st, condKey, []byte("forever"))
	}
}

// binaryKeyNames are key suffixes that a store must keep apart and intact,
// whatever encoding it applies to keys.
func binaryKeyNames() []string {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []string{
		"\x00",
		"\x00\x00",
		"a\x00b",
		"a\x00c",
		"\xff\xfe\xfd",      // invalid UTF-8
		"\xc3\x28",          // invalid UTF-8 sequence
		"h\u00e9llo \u4e16", // valid UTF-8
		" spaces and\ttabs\r\n",
		"*?[]{}:/\\.-_=+%",
		"a.b", "a_b", "a/b", "a-b", "A.B", // distinct under naive escaping
		strings.Repeat("long-", 100),
		string(all),
	}
}

func (s *suite) testBinaryKeys(t *testing.T) {
	st := s.store(t)
	names := binaryKeyNames()
	for i, n := range names {
		mustSet(t, st, s.key(t, n), fmt.Appendf(nil, "value %d", i), longTTL)
	}
	for i, n := range names {
		wantValue(t, st, s.key(t, n), fmt.Appendf(nil, "value %d", i))
	}
	mustDelete(t, st, s.key(t, names[0]))
	wantMissing(t, st, s.key(t, names[0]))
	wantValue(t, st, s.key(t, names[1]), []byte("value 1"))
}

func (s *suite) testBinaryValues(t *testing.T) {
	st := s.store(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string][]byte{
		"all-bytes":    all,
		"all-reversed": reversed(all),
		"nul":          {0},
		"nuls":         {0, 0, 0, 0},
		"invalid-utf8": []byte("\xff\xfe\xfd\xc3\x28"),
		"crlf":         []byte("a\r\nb\r\n"),
		"high-bit":     bytes.Repeat([]byte{0x80, 0xff}, 300),
	}
	for name, v := range values {
		mustSet(t, st, s.key(t, name), v, longTTL)
	}
	for name, v := range values {
		wantValue(t, st, s.key(t, name), v)
	}
}

func (s *suite) testEmptyValue(t *testing.T) {
	st := s.store(t)
	for name, v := range map[string][]byte{"empty": {}, "nil": nil} {
		k := s.key(t, name)
		mustSet(t, st, k, v, longTTL)
		got, found := mustGet(t, st, k)
		if !found {
			t.Errorf("Get(%q) after Set of a %s value: not found, want found and empty", k, name)
		} else if len(got) != 0 {
			t.Errorf("Get(%q) after Set of a %s value = %q, want empty", k, name, short(got))
		}
	}
}

func (s *suite) testLargeValue(t *testing.T) {
	st := s.store(t)
	v := randomBytes(1<<20, 1)
	k := s.key(t, "1MiB")
	mustSet(t, st, k, v, longTTL)
	got, found := mustGet(t, st, k)
	if !found {
		t.Fatalf("Get(%q) after Set of 1 MiB: not found", k)
	}
	if !bytes.Equal(got, v) {
		t.Fatalf("Get(%q) returned %d bytes that differ from the 1 MiB set", k, len(got))
	}
}

func (s *suite) testReturnedSliceIsCallers(t *testing.T) {
	st := s.store(t)
	k := s.key(t, "k")
	mustSet(t, st, k, []byte("original"), longTTL)
	got, _ := mustGet(t, st, k)
	for i := range got {
		got[i] = 'X'
	}
	_ = append(got[:0], "appended, and longer than the value"...)
	wantValue(t, st, k, []byte("original"))
	if mg, ok := st.(l2.MultiGetter); ok {
		vals, err := mg.GetMany(ctx(t), []string{k})
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		if len(vals) == 1 {
			for i := range vals[0] {
				vals[0][i] = 'Y'
			}
		}
		wantValue(t, st, k, []byte("original"))
	}
}

func (s *suite) testSetDoesNotRetain(t *testing.T) {
	st := s.store(t)
	k1, k2 := s.key(t, "k1"), s.key(t, "k2")
	buf := []byte("first")
	mustSet(t, st, k1, buf, longTTL)
	copy(buf, "XXXXX") // a caller reusing its buffer
	mustSet(t, st, k2, buf, longTTL)
	copy(buf, "YYYYY")
	wantValue(t, st, k1, []byte("first"))
	wantValue(t, st, k2, []byte("XXXXX"))
	if cond, ok := st.(l2.ConditionalStore); ok {
		k3 := s.key(t, "k3")
		copy(buf, "third")
		if _, err := cond.SetIfNewer(ctx(t), k3, buf, longTTL, 1); err != nil {
			t.Fatalf("SetIfNewer: %v", err)
		}
		copy(buf, "ZZZZZ")
		wantValue(t, st, k3, []byte("third"))
	}
}

// testConcurrent runs goroutines that each write and read keys of their own
// (reading their own writes) and keys they all share (reading one of the
// values someone wrote, whole).
func (s *suite) testConcurrent(t *testing.T) {
	const goroutines, ops, ownKeys, sharedKeys = 8, 200, 10, 5
	st := s.store(t)
	cond, isCond := st.(l2.ConditionalStore)
	mg, isMulti := st.(l2.MultiGetter)
	sharedKey := func(i int) string { return s.key(t, fmt.Sprintf("shared-%d", i%sharedKeys)) }
	sharedNames := make([]string, sharedKeys)
	for i := range sharedNames {
		sharedNames[i] = sharedKey(i)
	}
	// validShared reports whether v is a whole value some goroutine wrote.
	validShared := func(v []byte) bool {
		var g, n int
		_, err := fmt.Sscanf(string(v), "shared g=%d n=%d;", &g, &n)
		return err == nil && bytes.Equal(v, sharedValue(g, n))
	}
	c := ctx(t)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 42))
			own := make(map[string][]byte) // what this goroutine last wrote; nil: deleted
			for n := range ops {
				ownKey := s.key(t, fmt.Sprintf("g%d-%d", g, r.IntN(ownKeys)))
				var err error
				switch op := r.IntN(10); {
				case op < 3:
					v := fmt.Appendf(nil, "own g=%d n=%d", g, n)
					if err = st.Set(c, ownKey, v, longTTL); err == nil {
						own[ownKey] = v
					}
				case op < 5:
					var v []byte
					var found bool
					if v, found, err = st.Get(c, ownKey); err == nil {
						want, written := own[ownKey]
						switch {
						case !written && found:
							// Not written by this goroutine: cannot be.
							t.Errorf("Get(%q) = %q: never written", ownKey, v)
						case written && want == nil && found:
							t.Errorf("Get(%q) = %q after Delete", ownKey, v)
						case want != nil && !bytes.Equal(v, want):
							t.Errorf("Get(%q) = %q, found=%v: want %q", ownKey, v, found, want)
						}
					}
				case op < 6:
					if err = st.Delete(c, ownKey); err == nil {
						own[ownKey] = nil
					}
				case op < 8:
					err = st.Set(c, sharedKey(n), sharedValue(g, n), longTTL)
				case op < 9:
					var v []byte
					var found bool
					if v, found, err = st.Get(c, sharedKey(n)); err == nil && found && !validShared(v) {
						t.Errorf("Get(%q) = %q: not a value anyone wrote", sharedKey(n), short(v))
					}
				default:
					if isCond {
						_, err = cond.SetIfNewer(c, s.key(t, "cond"), sharedValue(g, n), longTTL, int64(n))
					} else if isMulti {
						var vals [][]byte
						if vals, err = mg.GetMany(c, sharedNames); err == nil {
							for _, v := range vals {
								if v != nil && !validShared(v) {
									t.Errorf("GetMany: %q is not a value anyone wrote", short(v))
								}
							}
						}
					}
				}
				if err != nil {
					t.Errorf("goroutine %d op %d: %v", g, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if isCond && isMulti {
		vals, err := mg.GetMany(ctx(t), append(sharedNames, s.key(t, "cond")))
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		for _, v := range vals {
			if v != nil && !validShared(v) {
				t.Errorf("GetMany: %q is not a value anyone wrote", short(v))
			}
		}
	}
}

func sharedValue(g, n int) []byte {
	// Long enough that a torn write would show.
	return fmt.Appendf(nil, "shared g=%d n=%d;%s", g, n, strings.Repeat(fmt.Sprintf("%d.%d,", g, n), 20))
}

// calls returns one closure per data method of st (optional ones included
// when st implements them), for the subtests that check every method fails
// the same way.
func (s *suite) calls(t *testing.T, st l2.Store) map[string]func(context.Context) error {
	k := s.key(t, "k")
	m := map[string]func(context.Context) error{
		"Get": func(c context.Context) error {
			_, _, err := st.Get(c, k)
			return err
		},
		"Set":    func(c context.Context) error { return st.Set(c, k, []byte("v"), longTTL) },
		"Delete": func(c context.Context) error { return st.Delete(c, k) },
	}
	if cond, ok := st.(l2.ConditionalStore); ok {
		m["SetIfNewer"] = func(c context.Context) error {
			_, err := cond.SetIfNewer(c, k, []byte("v"), longTTL, 1)
			return err
		}
	}
	if mg, ok := st.(l2.MultiGetter); ok {
		m["GetMany"] = func(c context.Context) error {
			_, err := mg.GetMany(c, []string{k, k + "2"})
			return err
		}
	}
	return m
}

func (s *suite) testUseAfterClose(t *testing.T) {
	st := s.store(t)
	k := s.key(t, "k")
	mustSet(t, st, k, []byte("v"), longTTL) // make sure it is connected
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range s.calls(t, st) {
		var err error
		within(t, promptly, name+" after Close", func() { err = call(ctx(t)) })
		if !errors.Is(err, l2.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error wrapping l2.ErrClosed", name, err)
		}
	}
	// Closing one store leaves the data, and other stores, alone.
	other := s.store(t)
	mustSet(t, other, s.key(t, "other"), []byte("w"), longTTL)
	wantValue(t, other, s.key(t, "other"), []byte("w"))
}

func (s *suite) testCloseIdempotent(t *testing.T) {
	st := s.store(t) // the cleanup closes it a third time
	for i := range 2 {
		var err error
		within(t, promptly, "Close", func() { err = st.Close() })
		if err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}

// randomBytes returns n pseudo-random bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	return b
}
