package l2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The committed corpus of FuzzDecodeEnvelope lives in
// testdata/fuzz/FuzzDecodeEnvelope, so that every `go test` replays it. The
// files named seed-* are written by envelopeSeeds (regenerate them with
// STRATA_WRITE_SEEDS=1 go test -run TestEnvelopeSeedCorpus ./l2); the others
// are inputs a long fuzzing run found that reached new code (see
// docs/hardening.md).

// envelopeSeeds returns the named inputs of the seed corpus: a valid
// encoding of every flag combination and field shape, every truncation of
// the documented example at a field boundary and inside a field, each
// version and unknown flag bit refused, lengths far beyond the input, and
// trailing bytes.
func envelopeSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	enc := func(e Envelope) []byte {
		b, err := e.AppendBinary(nil)
		if err != nil {
			t.Fatalf("seed %+v: %v", e, err)
		}
		return b
	}
	seeds := map[string][]byte{}
	valid := map[string]Envelope{
		"empty":                {},
		"doc-example":          docExample(),
		"failsafe":             {Flags: FlagFailSafe, Created: 1, Expires: 2, Value: []byte("v")},
		"tombstone":            {Flags: FlagTombstone, Created: 7, Expires: 7},
		"failsafe-tombstone":   {Flags: FlagFailSafe | FlagTombstone, Created: 7, Expires: 7},
		"negative-times":       {Created: -1, Expires: -1 << 63, EagerRefresh: -5, LastModified: -1},
		"max-times":            {Created: 1<<63 - 1, Expires: 1<<63 - 1, EagerRefresh: 1<<63 - 1, LastModified: 1<<63 - 1},
		"empty-tag":            {Tags: []string{""}, Value: []byte{0}},
		"64-tags":              {Tags: manyTags(64), Value: []byte("x")},
		"tag-300-bytes":        {Tags: []string{strings.Repeat("t", 300)}},
		"binary-tag-etag":      {Tags: []string{"\x00\xff", "\xff\xfe"}, ETag: "\x00", Value: []byte{0xff}},
		"etag-lastmodified":    {ETag: `W/"abc"`, LastModified: 1_700_000_000_000_000_000, Value: []byte(`"x"`)},
		"value-4k":             {Created: 3, Expires: 4, Value: bytes.Repeat([]byte{0xa5}, 4096)},
		"value-nul":            {Value: []byte{0, 0, 0, 0}},
		"eager-refresh":        {Flags: FlagFailSafe, Created: 10, Expires: 20, EagerRefresh: 18, Tags: []string{"a"}, Value: []byte("1")},
		"tombstone-with-value": {Flags: FlagTombstone, Created: 1, Value: []byte("left over")},
	}
	for name, e := range valid {
		seeds["valid-"+name] = enc(e)
	}

	doc := enc(docExample())
	// Every prefix of the example is truncated, the empty one included.
	for n := range len(doc) {
		seeds[fmt.Sprintf("truncated-%02d", n)] = doc[:n]
	}
	seeds["trailing-1"] = append(bytes.Clone(doc), 0)
	seeds["trailing-envelope"] = append(bytes.Clone(doc), doc...)
	for _, v := range []byte{0, 2, 0x7f, 0xff} {
		b := bytes.Clone(doc)
		b[0] = v
		seeds[fmt.Sprintf("version-%d", v)] = b
	}
	for bit := 2; bit < 8; bit++ {
		b := bytes.Clone(doc)
		b[1] |= 1 << bit
		seeds[fmt.Sprintf("flag-bit-%d", bit)] = b
	}

	// Lengths far beyond the input: the decoder must refuse them before it
	// allocates for them. Offsets are those of docs/wire-format.md.
	const countAt = 2 + 3*8
	le := binary.LittleEndian
	put16 := func(at int, v uint16) []byte { b := bytes.Clone(doc); le.PutUint16(b[at:], v); return b }
	put32 := func(at int, v uint32) []byte { b := bytes.Clone(doc); le.PutUint32(b[at:], v); return b }
	empty := enc(Envelope{})
	valueLenAt := len(doc) - len(docExample().Value) - 4
	etagLenAt := countAt + 2 + 2 + len("tenant:7") + 2 + len("user")
	seeds["huge-tag-count"] = put16(countAt, 0xffff)
	seeds["huge-tag-count-bare"] = append(bytes.Clone(doc[:countAt]), 0xff, 0xff)
	seeds["tag-count-plus-1"] = put16(countAt, 3)
	seeds["huge-tag-length"] = put16(countAt+2, 0xffff)
	seeds["huge-etag-length"] = put16(etagLenAt, 0xffff)
	seeds["huge-value-length"] = put32(valueLenAt, 0xffffffff)
	seeds["value-length-2^31-1"] = put32(valueLenAt, 1<<31-1)
	seeds["value-length-plus-1"] = put32(valueLenAt, uint32(len(docExample().Value)+1))
	seeds["value-length-minus-1"] = put32(valueLenAt, uint32(len(docExample().Value)-1))
	b := bytes.Clone(empty)
	le.PutUint32(b[len(b)-4:], 0xffffffff)
	seeds["empty-huge-value-length"] = b
	return seeds
}

func manyTags(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = "tag:" + strconv.Itoa(i)
	}
	return tags
}

// corpusFile is the content of a `go test` fuzz corpus file holding one
// []byte argument.
func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// checkSeedCorpus compares the seed-* files of dir with seeds, or writes
// them when $STRATA_WRITE_SEEDS is 1.
func checkSeedCorpus(t *testing.T, dir string, seeds map[string][]byte) {
	t.Helper()
	if os.Getenv("STRATA_WRITE_SEEDS") == "1" {
		old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range seeds {
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), corpusFile(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	files, err := filepath.Glob(filepath.Join(dir, "seed-*"))
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, f := range files {
		have = append(have, strings.TrimPrefix(filepath.Base(f), "seed-"))
	}
	var want []string
	for name := range seeds {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Fatalf("%s holds seeds %q, want %q: run STRATA_WRITE_SEEDS=1 go test -run %s", dir, have, want, t.Name())
	}
	for _, name := range want {
		got, err := os.ReadFile(filepath.Join(dir, "seed-"+name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, corpusFile(seeds[name])) {
			t.Errorf("%s/seed-%s is out of date: run STRATA_WRITE_SEEDS=1 go test -run %s", dir, name, t.Name())
		}
	}
}

// TestEnvelopeSeedCorpus keeps the committed seed corpus of
// FuzzDecodeEnvelope equal to envelopeSeeds, and checks that each seed
// decodes, or fails, as its name says.
func TestEnvelopeSeedCorpus(t *testing.T) {
	seeds := envelopeSeeds(t)
	for name, data := range seeds {
		_, err := DecodeEnvelope(data)
		if strings.HasPrefix(name, "valid-") != (err == nil) {
			t.Errorf("seed %s: DecodeEnvelope error %v", name, err)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("seed %s: error %v does not wrap ErrCorrupt", name, err)
		}
	}
	checkSeedCorpus(t, filepath.Join("testdata", "fuzz", "FuzzDecodeEnvelope"), seeds)
}

// FuzzDecodedEnvelopeIsIndependent checks that what DecodeEnvelope returns
// can be changed without changing the input: appending to Value (which
// aliases the input) never writes into it, and Tags and ETag are copies.
//
//	go test -run '^$' -fuzz FuzzDecodedEnvelopeIsIndependent -fuzztime 60s ./l2
func FuzzDecodedEnvelopeIsIndependent(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, []byte("suffix"))
	}
	f.Fuzz(func(t *testing.T, data, more []byte) {
		// Spare capacity after the input is where a bad alias would write.
		buf := make([]byte, len(data), len(data)+len(more)+8)
		copy(buf, data)
		e, err := DecodeEnvelope(buf)
		if err != nil {
			return
		}
		_ = append(e.Value, more...)
		for i := range e.Tags {
			e.Tags[i] += "x"
		}
		e.ETag += "x"
		if !bytes.Equal(buf, data) || !bytes.Equal(buf[len(buf):cap(buf)], make([]byte, cap(buf)-len(buf))) {
			t.Fatalf("changing the decoded envelope changed its input:\n in % x\nnow % x", data, buf[:cap(buf)])
		}
	})
}
