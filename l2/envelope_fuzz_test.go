package l2

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fuzzSeeds are valid encodings the fuzzers start from.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, e := range []Envelope{
		{},
		docExample(),
		{Flags: FlagFailSafe, Created: -1, Expires: 1 << 62, Tags: []string{""}, Value: []byte{0}},
		{Tags: []string{"a", "bb", "ccc"}, ETag: "\x00\xff", LastModified: 42, Value: []byte("value")},
	} {
		b, err := e.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzDecodeEnvelope checks that no input makes DecodeEnvelope panic, that
// every error wraps ErrCorrupt, and that whatever decodes re-encodes to the
// very same bytes (the format has exactly one encoding per envelope).
//
//	go test -run '^$' -fuzz FuzzDecodeEnvelope -fuzztime 60s ./l2
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(append(bytes.Clone(s), 0))
	}
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeEnvelope error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := e.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decode then encode changed the bytes:\n in % x\nout % x", data, again)
		}
	})
}

// FuzzEnvelopeRoundTrip checks that every envelope within the limits
// survives encode then decode, and that one with unknown flags is refused.
// Tags are given joined by "\x1e".
//
//	go test -run '^$' -fuzz FuzzEnvelopeRoundTrip -fuzztime 60s ./l2
func FuzzEnvelopeRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		e, _ := DecodeEnvelope(s)
		f.Add(e.Flags, e.Created, e.Expires, e.EagerRefresh, strings.Join(e.Tags, "\x1e"), e.ETag, e.LastModified, e.Value)
	}
	f.Fuzz(func(t *testing.T, flags uint8, created, expires, eager int64, tags, etag string, lastModified int64, value []byte) {
		e := Envelope{
			Flags: flags, Created: created, Expires: expires, EagerRefresh: eager,
			ETag: etag, LastModified: lastModified, Value: value,
		}
		if tags != "" {
			e.Tags = strings.Split(tags, "\x1e")
		}
		b, err := e.AppendBinary([]byte("prefix"))
		if flags&^knownFlags != 0 {
			if !errors.Is(err, ErrInvalidEnvelope) {
				t.Fatalf("AppendBinary with flags %#x = %v, want ErrInvalidEnvelope", flags, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendBinary(%+v): %v", e, err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendBinary lost dst: % x", b)
		}
		got, err := DecodeEnvelope(b[len("prefix"):])
		if err != nil {
			t.Fatalf("DecodeEnvelope(AppendBinary(%+v)): %v", e, err)
		}
		if !envelopesEqual(got, e) {
			t.Fatalf("round trip changed the envelope:\n got %+v\nwant %+v", got, e)
		}
	})
}
