package l2

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var (
	_ encoding.BinaryAppender  = (*Envelope)(nil)
	_ encoding.BinaryMarshaler = (*Envelope)(nil)
)

// docExample is the envelope whose encoding docs/wire-format.md shows.
func docExample() Envelope {
	const created = int64(1_700_000_000_000_000_000) // 2023-11-14T22:13:20Z
	return Envelope{
		Flags:        FlagFailSafe,
		Created:      created,
		Expires:      created + 60e9, // +1 min
		EagerRefresh: created + 48e9, // +48 s (eager refresh at 0.8)
		Tags:         []string{"tenant:7", "user"},
		ETag:         `"v1"`,
		LastModified: created - 3600e9, // 1 h before
		Value:        []byte(`{"id":42}`),
	}
}

// docExampleHex is the encoding of docExample, as docs/wire-format.md shows
// it (16 bytes a line).
const docExampleHex = `
01 01 00 00 2a 36 fe 9c 97 17 00 58 71 2e 0c 9d
97 17 00 e0 2f 63 09 9d 97 17 02 00 08 00 74 65
6e 61 6e 74 3a 37 04 00 75 73 65 72 04 00 22 76
31 22 00 60 71 05 b8 99 97 17 09 00 00 00 7b 22
69 64 22 3a 34 32 7d
`

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnvelopeGolden(t *testing.T) {
	e := docExample()
	got, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, docExampleHex)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding of the documented example changed:\n got % x\nwant % x", got, want)
	}
	back, err := DecodeEnvelope(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("decoded example = %+v, want %+v", back, e)
	}
}

// TestWireFormatDocShowsGolden keeps docs/wire-format.md in step with the
// code: the hex block of its "L2 entry envelope" section must be the exact
// encoding of docExample.
func TestWireFormatDocShowsGolden(t *testing.T) {
	doc, err := os.ReadFile("../docs/wire-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## L2 entry envelope\n")
	if !ok {
		t.Fatal(`docs/wire-format.md has no "## L2 entry envelope" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	m := regexp.MustCompile("(?s)<!-- golden: l2 envelope example -->\\s*```text\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the envelope section has no golden hex block after <!-- golden: l2 envelope example -->")
	}
	if got, want := mustHex(t, m[1]), mustHex(t, docExampleHex); !bytes.Equal(got, want) {
		t.Fatalf("docs/wire-format.md shows\n% x\nbut the example encodes as\n% x", got, want)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	long := strings.Repeat("t", MaxTagLen)
	for name, e := range map[string]Envelope{
		"zero":    {},
		"example": docExample(),
		"extremes": {
			Created: math.MinInt64, Expires: math.MaxInt64, EagerRefresh: -1, LastModified: math.MaxInt64,
		},
		"binary": {
			Tags:  []string{"", "\x00", "\xff\xfe", "h\u00e9"},
			ETag:  "W/\"\x00\xff\"",
			Value: []byte{0, 1, 2, 0xff},
		},
		"limits": {Tags: []string{long, long}, ETag: strings.Repeat("e", MaxETagLen)},
		"big":    {Value: bytes.Repeat([]byte{0xa5}, 1<<20)},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := e.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != e.encodedLen() {
				t.Errorf("encoded %d bytes, encodedLen says %d", len(b), e.encodedLen())
			}
			got, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			if !envelopesEqual(got, e) {
				t.Fatalf("round trip changed the envelope:\n got %+v\nwant %+v", got, e)
			}
		})
	}
}

// envelopesEqual compares envelopes, taking nil and empty Tags and Value as
// equal.
func envelopesEqual(a, b Envelope) bool {
	if len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	return a.Flags == b.Flags && a.Created == b.Created && a.Expires == b.Expires &&
		a.EagerRefresh == b.EagerRefresh && a.ETag == b.ETag &&
		a.LastModified == b.LastModified && bytes.Equal(a.Value, b.Value)
}

func TestAppendBinaryAppends(t *testing.T) {
	e := docExample()
	want, _ := e.MarshalBinary()
	prefix := []byte("prefix")
	got, err := e.AppendBinary(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("AppendBinary(prefix) = % x", got)
	}
	// With room to spare, it appends in place.
	buf := make([]byte, 0, 1024)
	got, _ = e.AppendBinary(buf)
	if &got[0] != &buf[:1][0] {
		t.Error("AppendBinary reallocated a buffer with enough room")
	}
}

func TestDecodeNilAndEmptyFields(t *testing.T) {
	b, _ := (&Envelope{Tags: []string{}, Value: nil}).MarshalBinary()
	e, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Tags != nil {
		t.Errorf("no tags decoded as %#v, want nil", e.Tags)
	}
	if e.Value == nil || len(e.Value) != 0 {
		t.Errorf("empty value decoded as %#v, want an empty non-nil slice", e.Value)
	}
}

func TestDecodedValueAliasesInputWithCappedCapacity(t *testing.T) {
	data, _ := (&Envelope{Value: []byte("abc")}).AppendBinary(nil)
	data = append(data, "after"...)[:len(data)] // bytes beyond the envelope
	e, err := DecodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] = 'C'
	if string(e.Value) != "abC" {
		t.Errorf("Value = %q: does not alias the input as documented", e.Value)
	}
	_ = append(e.Value, 'X')
	if !bytes.HasPrefix(data[len(data):cap(data)], []byte("after")) {
		t.Error("appending to Value wrote into the input beyond the envelope")
	}
}

func TestAppendBinaryErrors(t *testing.T) {
	tooLong := strings.Repeat("x", MaxTagLen+1)
	for _, tt := range []struct {
		name string
		e    Envelope
		want string
	}{
		{"unknown flag", Envelope{Flags: 0x04}, "unknown flags 0x04"},
		{"all flags", Envelope{Flags: 0xff}, "unknown flags 0xfc"},
		{"too many tags", Envelope{Tags: make([]string, MaxTags+1)}, "65536 tags (max 65535)"},
		{"tag too long", Envelope{Tags: []string{"ok", tooLong}}, "tag 1 is 65536 bytes (max 65535)"},
		{"etag too long", Envelope{ETag: tooLong}, "ETag is 65536 bytes (max 65535)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := tt.e.AppendBinary(dst)
			if !errors.Is(err, ErrInvalidEnvelope) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AppendBinary = %v, want ErrInvalidEnvelope saying %q", err, tt.want)
			}
			if string(got) != "keep" {
				t.Fatalf("AppendBinary changed dst to %q on error", got)
			}
		})
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	valid := mustHex(t, docExampleHex)
	with := func(off int, b ...byte) []byte {
		c := bytes.Clone(valid)
		copy(c[off:], b)
		return c
	}
	header := valid[:26] // version, flags, three times
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"nil", nil, "truncated version at offset 0 (need 1 bytes, have 0)"},
		{"empty", []byte{}, "truncated version at offset 0"},
		{"version 0", with(0, 0), "unsupported version 0 at offset 0 (want 1)"},
		{"version 2", with(0, 2), "unsupported version 2 at offset 0 (want 1)"},
		{"garbage", []byte("hello, world"), "unsupported version 104 at offset 0"},
		{"unknown flag", with(1, 0x81), "unknown flags 0x80 at offset 1"},
		{"only version", valid[:1], "truncated flags at offset 1 (need 1 bytes, have 0)"},
		{"cut in created", valid[:5], "truncated created at offset 2 (need 8 bytes, have 3)"},
		{"cut in expires", valid[:17], "truncated expires at offset 10"},
		{"cut in eager refresh", valid[:25], "truncated eager refresh at offset 18"},
		{"no tag count", header, "truncated tag count at offset 26"},
		{"tag count beyond input", append(bytes.Clone(header), 0xff, 0xff, 0, 0), "tag count 65535 at offset 26 exceeds the 2 bytes left"},
		{"cut in tag length", valid[:39], "truncated tag length at offset 38 (need 2 bytes, have 1)"},
		{"tag count beyond input by one", valid[:29], "tag count 2 at offset 26 exceeds the 1 bytes left"},
		{"cut in tag", valid[:33], "truncated tag at offset 30 (need 8 bytes, have 3)"},
		{"tag length beyond input", with(28, 0xff, 0xff), "truncated tag at offset 30 (need 65535 bytes"},
		{"cut in etag length", valid[:45], "truncated ETag length at offset 44"},
		{"cut in etag", valid[:48], "truncated ETag at offset 46 (need 4 bytes, have 2)"},
		{"cut in last modified", valid[:55], "truncated last modified at offset 50"},
		{"cut in value length", valid[:60], "truncated value length at offset 58"},
		{"cut in value", valid[:len(valid)-1], "truncated value at offset 62 (need 9 bytes, have 8)"},
		{"value length beyond input", with(58, 0xff, 0xff, 0xff, 0xff), "truncated value at offset 62 (need 4294967295 bytes, have 9)"},
		{"trailing byte", append(bytes.Clone(valid), 0), "1 trailing bytes at offset 71"},
		{"two envelopes", append(bytes.Clone(valid), valid...), "71 trailing bytes at offset 71"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEnvelope(tt.data)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeEnvelope = %+v, %v; want an error wrapping ErrCorrupt", e, err)
			}
			if !strings.HasPrefix(err.Error(), "l2: corrupt envelope: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeEnvelope error %q, want it to say %q", err, tt.want)
			}
			if !reflect.DeepEqual(e, Envelope{}) {
				t.Fatalf("DecodeEnvelope returned %+v with its error, want the zero Envelope", e)
			}
		})
	}
}

// TestDecodeAllocatesNoMoreThanInputJustifies is the guard against a
// crafted length making the decoder allocate far more than it was given.
func TestDecodeAllocatesNoMoreThanInputJustifies(t *testing.T) {
	valid := mustHex(t, docExampleHex)
	hostile := [][]byte{
		append(bytes.Clone(valid[:26]), 0xff, 0xff, 0, 0, 0, 0), // 65535 tags
		func() []byte { c := bytes.Clone(valid); c[28], c[29] = 0xff, 0xff; return c }(),
		func() []byte { c := bytes.Clone(valid); copy(c[58:], []byte{0xff, 0xff, 0xff, 0x7f}); return c }(),
	}
	for i, data := range hostile {
		const runs = 100
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range runs {
			if _, err := DecodeEnvelope(data); err == nil {
				t.Fatalf("hostile input %d decoded", i)
			}
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 1024 {
			t.Errorf("hostile input %d (%d bytes): %d bytes allocated per decode", i, len(data), perRun)
		}
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	e := docExample()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = e.AppendBinary(buf[:0])
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	e := docExample()
	data, _ := e.MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = DecodeEnvelope(data)
	}
}
