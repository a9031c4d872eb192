package natskvl2

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

var kvKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// TestKeyToken: tokens are valid KV keys without '.', distinct for
// distinct keys, and hashed only for long keys.
func TestKeyToken(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	keys := []string{"", "\x00", "\x00\x00", "a.b", "a_b", "a/b", "a-b", "A.B", "k", "h", string(all),
		strings.Repeat("x", 360), strings.Repeat("x", 361), strings.Repeat("y", 10000)}
	seen := make(map[string]string)
	for _, k := range keys {
		tok, hashed := keyToken(k)
		if !kvKey.MatchString(tok) || strings.Contains(tok, ".") {
			t.Errorf("keyToken(%q) = %q: not a valid dot-free KV key", k, tok)
		}
		if hashed != (len(k) > 360) {
			t.Errorf("keyToken of a %d-byte key: hashed = %v", len(k), hashed)
		}
		if prev, dup := seen[tok]; dup {
			t.Errorf("keys %q and %q share the token %q", prev, k, tok)
		}
		seen[tok] = k
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{expires: 1, version: math.MinInt64, value: []byte{}},
		{expires: math.MaxInt64, version: 1_700_000_000_000_000_001, value: []byte("v\x00")},
		{expires: 5, version: -1, fullKey: true, key: "the key", value: []byte("x")},
		{expires: 5, version: 2, chunked: true, id: 1 << 60, count: 3, total: 1 << 21},
		{expires: 5, version: 2, fullKey: true, key: "k", chunked: true, id: 7, count: 1, total: 9},
	} {
		got, err := decodeRecord(appendRecord(nil, &r))
		if err != nil {
			t.Errorf("decode(%+v): %v", r, err)
			continue
		}
		if got.expires != r.expires || got.version != r.version || got.key != r.key || got.fullKey != r.fullKey ||
			got.chunked != r.chunked || got.id != r.id || got.count != r.count || got.total != r.total || string(got.value) != string(r.value) {
			t.Errorf("round trip of %+v = %+v", r, got)
		}
	}
	for _, b := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, append([]byte{1, 4}, make([]byte, 16)...),
		append([]byte{1, flagFullKey}, make([]byte, 16)...), append(append([]byte{1, flagFullKey}, make([]byte, 16)...), 255, 0, 0, 0),
		append([]byte{1, flagChunked}, make([]byte, 17)...)} {
		if _, err := decodeRecord(b); err == nil {
			t.Errorf("decodeRecord(%x) succeeded", b)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, &record{expires: 1, value: []byte("v")}))
	f.Add(appendRecord(nil, &record{expires: 1, fullKey: true, key: "k", chunked: true, count: 2, total: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeRecord(b) // never panics
	})
}
