package redisl2

import (
	"math"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/redistest"
)

// TestScriptReadsHeadersAsGoDoes: the conditional script and entryVersion
// agree on what a stored value's header is. For a value with a header, the
// script stores a newer version and refuses one that is not newer; for a
// value without one (written by something else) it stores any version. A
// lenient reading in the script (Lua's tonumber takes upper-case digits, a
// sign, spaces) made some foreign values outrank every version, so that the
// key could never be written again.
func TestScriptReadsHeadersAsGoDoes(t *testing.T) {
	c := redistest.NewClient(t, nil)
	prefix := redistest.Prefix()
	s, err := New(c, &Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	for _, raw := range []string{
		"FFFFFFFFFFFFFFFFxyz", "FFFFFFFFffffffffxyz", "ffffffffFFFFFFFFxyz", "-0000001-0000001xyz",
		"+fffffff+fffffffxyz", "fffffffffffffff fffff", " fffffffffffffffxyz", "fffffff\tffffffffxyz",
		"0xffffff0xffffffxyz", "fffffffffffffffg", "ffffffffffffffff", "fffffffffffffffffoo",
		"8000000000000000", "0000000000000000x", "ffffffff", "",
	} {
		key := "hdr:" + raw
		if err := c.Set(ctx, prefix+key, raw, 0).Err(); err != nil {
			t.Fatal(err)
		}
		old, isEntry := entryVersion([]byte(raw))
		if isEntry && old == math.MaxInt64 {
			stored, err := s.SetIfNewer(ctx, key, []byte("v"), time.Hour, math.MaxInt64)
			if err != nil || stored {
				t.Errorf("%q (version %d): SetIfNewer of the same version stored=%v err=%v, want refused", raw, old, stored, err)
			}
			continue
		}
		version := int64(math.MinInt64 + 1) // older than any entry but the lowest
		if isEntry {
			version = old + 1
		}
		stored, err := s.SetIfNewer(ctx, key, []byte("v"), time.Hour, version)
		if err != nil || !stored {
			t.Errorf("%q (an entry: %v, version %d): SetIfNewer of version %d stored=%v err=%v, want stored", raw, isEntry, old, version, stored, err)
		}
		if isEntry {
			// The same header again: not newer, refused.
			if err := c.Set(ctx, prefix+key, raw, 0).Err(); err != nil {
				t.Fatal(err)
			}
			if stored, err := s.SetIfNewer(ctx, key, []byte("v"), time.Hour, old); err != nil || stored {
				t.Errorf("%q: SetIfNewer of its own version %d stored=%v err=%v, want refused", raw, old, stored, err)
			}
		}
	}
}
