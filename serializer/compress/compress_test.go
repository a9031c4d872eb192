package compress_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/stratacache/strata/serializer/compress"
	"github.com/stratacache/strata/serializer/jsonserializer"
	"github.com/stratacache/strata/serializer/msgpackserializer"
)

type doc struct {
	Title string
	Body  string
	Raw   []byte
}

func compressible(n int) doc {
	return doc{Title: "t", Body: strings.Repeat("all work and no play ", n/21+1)[:n]}
}

func random(n int) doc {
	raw := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(raw)
	return doc{Raw: raw}
}

func TestFormatByte(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts *compress.Options
		v    doc
		want byte
	}{
		{"small value stays plain", nil, compressible(100), 0},
		{"large value compressed with zstd", nil, compressible(4000), 1},
		{"large value compressed with s2", &compress.Options{Algorithm: compress.S2}, compressible(4000), 2},
		{"threshold lowered", &compress.Options{MinSize: 50}, compressible(100), 1},
		{"threshold raised", &compress.Options{MinSize: 1 << 20}, compressible(4000), 0},
		{"incompressible stays plain (zstd)", nil, random(4000), 0},
		{"incompressible stays plain (s2)", &compress.Options{Algorithm: compress.S2}, random(4000), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, msgpackserializer.New(), tt.opts)
			b, err := s.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != tt.want {
				t.Fatalf("format byte %d, want %d (%d bytes)", b[0], tt.want, len(b))
			}
			var got doc
			if err := s.Unmarshal(b, &got); err != nil || got.Body != tt.v.Body || !bytes.Equal(got.Raw, tt.v.Raw) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

// TestOptionsCanChange: entries written with any algorithm and threshold
// are read by a Serializer configured otherwise.
func TestOptionsCanChange(t *testing.T) {
	inner := jsonserializer.New()
	writers := map[string]*compress.Serializer{
		"zstd":        mustNew(t, inner, &compress.Options{Algorithm: compress.Zstd, MinSize: 1}),
		"s2":          mustNew(t, inner, &compress.Options{Algorithm: compress.S2, MinSize: 1}),
		"plain":       mustNew(t, inner, &compress.Options{MinSize: 1 << 30}),
		"default":     mustNew(t, inner, nil),
		"default, s2": mustNew(t, inner, &compress.Options{Algorithm: compress.S2}),
	}
	for _, size := range []int{10, 5000} {
		v := compressible(size)
		for wname, w := range writers {
			b, err := w.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			for rname, r := range writers {
				var got doc
				if err := r.Unmarshal(b, &got); err != nil || got.Body != v.Body || got.Title != v.Title {
					t.Errorf("%d-byte value written by %s, read by %s: %v", size, wname, rname, err)
				}
			}
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	s := mustNew(t, jsonserializer.New(), &compress.Options{MinSize: 1})
	zb, _ := s.Marshal(compressible(3000))
	s2s := mustNew(t, jsonserializer.New(), &compress.Options{MinSize: 1, Algorithm: compress.S2})
	sb, _ := s2s.Marshal(compressible(3000))
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x10; return b }
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty data"},
		{"unknown format byte", []byte{7, '{', '}'}, "unknown format byte 7"},
		{"zstd garbage", []byte{1, 'n', 'o', 'p', 'e'}, "zstd: "},
		{"zstd truncated", zb[:len(zb)/2], "zstd: "},
		{"zstd bit flip", flip(zb, len(zb)/2), "zstd: "},
		{"s2 too short", []byte{2, 0}, "s2: truncated"},
		{"s2 truncated", sb[:len(sb)/2], "s2: "},
		{"s2 bit flip", flip(sb, len(sb)/2), "s2: "},
		{"s2 bad checksum", flip(sb, len(sb)-1), "s2: checksum mismatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var v doc
			err := s.Unmarshal(tt.data, &v)
			if err == nil || !strings.HasPrefix(err.Error(), "compress: unmarshal into *compress_test.doc: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unmarshal = %v, want a compress error saying %q", err, tt.want)
			}
		})
	}
}

func TestInnerErrorsPassThrough(t *testing.T) {
	s := mustNew(t, jsonserializer.New(), nil)
	_, err := s.Marshal(make(chan int))
	var ute *json.UnsupportedTypeError
	if !errors.As(err, &ute) || !strings.HasPrefix(err.Error(), "jsonserializer: marshal chan int") {
		t.Fatalf("Marshal(chan) = %v, want jsonserializer's error", err)
	}
	var n int
	if err := s.Unmarshal([]byte{0, '"', 'x', '"'}, &n); err == nil || !strings.HasPrefix(err.Error(), "jsonserializer: unmarshal into *int") {
		t.Fatalf("Unmarshal of a plain string into an int = %v, want jsonserializer's error", err)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for _, tt := range []struct {
		opts *compress.Options
		want string
	}{
		{&compress.Options{Algorithm: 9}, "Options.Algorithm 9 is unknown"},
		{&compress.Options{MinSize: -1}, "Options.MinSize -1 is negative"},
		{&compress.Options{MaxDecodedSize: -5}, "Options.MaxDecodedSize -5 is negative"},
	} {
		if _, err := compress.New(jsonserializer.New(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error saying %q", *tt.opts, err, tt.want)
		}
	}
	if _, err := compress.New(nil, nil); err == nil {
		t.Error("New(nil, nil) succeeded")
	}
}

// zeros is the plain encoding of a JSON string of n zero characters.
func zeros(n int) []byte {
	return append(append([]byte{'"'}, bytes.Repeat([]byte{'0'}, n)...), '"')
}

// bombs returns entries that decompress to 8 MiB: zstd with and without the
// content size in the frame header, two zstd frames of 4 MiB, and S2.
func bombs(t *testing.T) map[string][]byte {
	plain := zeros(8 << 20)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := map[string][]byte{
		"zstd, size declared": enc.EncodeAll(plain, []byte{1}),
		"zstd, two frames":    enc.EncodeAll(plain[4<<20:], enc.EncodeAll(plain[:4<<20], []byte{1})),
	}
	// A streamed frame does not declare its size.
	var streamed bytes.Buffer
	streamed.WriteByte(1)
	w, err := zstd.NewWriter(&streamed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out["zstd, size not declared"] = streamed.Bytes()
	s2b := append([]byte{2}, s2.Encode(nil, plain)...)
	out["s2"] = append(s2b, 0, 0, 0, 0) // the checksum is never reached
	return out
}

// TestDecompressionIsBounded: entries decompressing to 8 MiB are refused
// by a Serializer bounded at 1 MiB, without allocating anything like 8 MiB,
// and accepted by one bounded at 16 MiB (but for S2's dummy checksum).
func TestDecompressionIsBounded(t *testing.T) {
	small := mustNew(t, jsonserializer.New(), &compress.Options{MaxDecodedSize: 1 << 20})
	large := mustNew(t, jsonserializer.New(), &compress.Options{MaxDecodedSize: 16 << 20})
	for name, bomb := range bombs(t) {
		t.Run(name, func(t *testing.T) {
			var v string
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := small.Unmarshal(bomb, &v)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, compress.ErrTooLarge) {
				t.Fatalf("Unmarshal of a %d-byte entry decompressing to 8 MiB = %v, want ErrTooLarge", len(bomb), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 6<<20 {
				t.Errorf("refusing the entry allocated %d bytes", alloc)
			}
			err = large.Unmarshal(bomb, &v)
			if name == "s2" {
				if err == nil || !strings.Contains(err.Error(), "checksum") {
					t.Fatalf("large bound: %v, want a checksum mismatch", err)
				}
				return
			}
			if err != nil || len(v) != 8<<20 {
				t.Fatalf("large bound: %d bytes, %v", len(v), err)
			}
		})
	}
}

// TestDefaultBoundRefusesADeclaredGiant: a zstd frame header declaring
// 1 TiB is refused before any decoding.
func TestDefaultBoundRefusesADeclaredGiant(t *testing.T) {
	// Magic, descriptor (8-byte content size, single segment), size.
	frame := []byte{1, 0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0}
	var v string
	err := mustNew(t, jsonserializer.New(), nil).Unmarshal(frame, &v)
	if !errors.Is(err, compress.ErrTooLarge) || !strings.Contains(err.Error(), "declares 1099511627776 bytes") {
		t.Fatalf("Unmarshal = %v, want ErrTooLarge naming the declared size", err)
	}
}

func TestCompressesWell(t *testing.T) {
	v := compressible(10_000)
	for _, alg := range []compress.Algorithm{compress.Zstd, compress.S2} {
		b, err := mustNew(t, jsonserializer.New(), &compress.Options{Algorithm: alg}).Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1000 {
			t.Errorf("%v: %d bytes for 10,000 bytes of repeated text", alg, len(b))
		}
	}
}

func TestMarshalRefusesWhatUnmarshalWould(t *testing.T) {
	s := mustNew(t, jsonserializer.New(), &compress.Options{MaxDecodedSize: 1000})
	if _, err := s.Marshal(compressible(2000)); !errors.Is(err, compress.ErrTooLarge) || !strings.HasPrefix(err.Error(), "compress: marshal compress_test.doc: ") {
		t.Fatalf("Marshal of a 2,000-byte value with MaxDecodedSize 1000 = %v, want ErrTooLarge", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	s := mustNew(f, jsonserializer.New(), &compress.Options{MinSize: 1, MaxDecodedSize: 1 << 20})
	s2s := mustNew(f, jsonserializer.New(), &compress.Options{MinSize: 1, Algorithm: compress.S2})
	for _, w := range []*compress.Serializer{s, s2s} {
		b, _ := w.Marshal(compressible(300))
		f.Add(b)
	}
	f.Add([]byte{0, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v doc
		_ = s.Unmarshal(data, &v)
	})
}
