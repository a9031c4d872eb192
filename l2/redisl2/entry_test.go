package redisl2

import (
	"bytes"
	"math"
	"slices"
	"testing"
)

// TestEntryHeaderOrder checks that headers sort, as text, in the order of
// their versions, across the sign boundary and at today's Unix nanoseconds
// (beyond float64's 2^53), and that they decode to the version.
func TestEntryHeaderOrder(t *testing.T) {
	const today = int64(1_700_000_000_000_000_000)
	versions := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 53, -2, -1, 0, 1, 2, 1 << 53, 1<<53 + 1, today, today + 1, today + 2, math.MaxInt64 - 1, math.MaxInt64}
	var headers []string
	for _, v := range versions {
		e := appendEntry(nil, v, []byte("value"))
		if len(e) != headerLen+len("value") {
			t.Fatalf("entry of version %d is %d bytes, want %d", v, len(e), headerLen+5)
		}
		got, ok := entryVersion(e)
		if !ok || got != v {
			t.Errorf("entryVersion(%q) = %d, %v; want %d", e, got, ok, v)
		}
		headers = append(headers, string(e[:headerLen]))
	}
	if !slices.IsSorted(headers) {
		t.Errorf("headers are not in version order: %q", headers)
	}
	if got := string(appendEntry(nil, math.MinInt64, nil)); got != "0000000000000000" {
		t.Errorf("header of a plain Set = %q, want all zeros", got)
	}
	// The example in docs/redis.md.
	if got := string(appendEntry(nil, 1_700_000_000_123_456_789, []byte("v"))); got != "97979cfe3d85cd15v" {
		t.Errorf("entry of version 1700000000123456789 = %q, want 97979cfe3d85cd15v (docs/redis.md)", got)
	}
	if got := string(appendEntry(nil, 0, nil)); got != "8000000000000000" {
		t.Errorf("header of version 0 = %q, want 8000000000000000", got)
	}
}

// TestEntryValue: an entry's value is what follows its header; a Redis
// value without a valid header (written by something else) is returned
// whole.
func TestEntryValue(t *testing.T) {
	for _, v := range [][]byte{nil, {}, {0, 0xff}, bytes.Repeat([]byte("x"), 100)} {
		got := entryValue(appendEntry(nil, 42, v))
		if !bytes.Equal(got, v) || got == nil {
			t.Errorf("entryValue(appendEntry(%q)) = %q", v, got)
		}
	}
	for _, raw := range []string{"", "short", "000000000000000", "0000000000000000"[:15] + "G", "ABCDEF0123456789value", "00000000 0000000"} {
		if _, ok := entryVersion([]byte(raw)); ok {
			t.Errorf("entryVersion(%q) found a header", raw)
		}
		if got := entryValue([]byte(raw)); string(got) != raw {
			t.Errorf("entryValue(%q) = %q, want it whole", raw, got)
		}
	}
}
