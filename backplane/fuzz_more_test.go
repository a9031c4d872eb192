package backplane

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The committed corpora of FuzzDecodeMessage and FuzzKeyringOpenReseal live in
// testdata/fuzz/<name>, so that every `go test` replays them. The files
// named seed-* are written from messageSeeds and sealedSeeds (regenerate
// them with STRATA_WRITE_SEEDS=1 go test -run SeedCorpus ./backplane); the
// others are inputs a long fuzzing run found that reached new code (see
// docs/hardening.md).

// fuzzKey is the signing key of the FuzzKeyringOpenReseal corpus.
var fuzzKey = []byte("strata-fuzz-signing-key-32-bytes")

// messageSeeds returns the named inputs of FuzzDecodeMessage's seed corpus:
// a valid message of every action and of every field at its limits, each
// version, flag bit, action and length refused, a signed message (refused
// unopened), truncations at and inside each field, lengths beyond the
// input, and trailing bytes.
func messageSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	enc := func(m Message) []byte {
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("seed %+v: %v", m, err)
		}
		return b
	}
	golden, _ := hex.DecodeString(goldenHex)
	clearMsg, _ := hex.DecodeString(goldenClearHex)
	seeds := map[string][]byte{"valid-golden": golden, "valid-golden-clear": clearMsg}
	for a := ActionSet; a <= maxAction; a++ {
		m := Message{Cache: "c", Source: "s", Seq: uint64(a), Action: a, Timestamp: int64(a)}
		if !a.keyless() {
			m.Key = "k:" + a.String()
		}
		seeds["valid-action-"+a.String()] = enc(m)
	}
	long := Message{Cache: strings.Repeat("c", MaxCacheNameLen), Source: strings.Repeat("s", MaxSourceLen),
		TraceParent: strings.Repeat("t", MaxTraceParentLen), Seq: 1<<64 - 1, Action: ActionExpire,
		Key: strings.Repeat("k", 1000), Timestamp: -1 << 63}
	seeds["valid-long-fields"] = enc(long)
	seeds["valid-binary-key"] = enc(Message{Cache: "\x00", Source: "\xff", Seq: 1, Action: ActionRemoveTag, Key: "\x00\xff\n"})
	seeds["valid-empty-key"] = enc(Message{Cache: "c", Source: "s", Seq: 1, Action: ActionSet})

	for _, v := range []byte{0, 2, 0xff} {
		b := bytes.Clone(golden)
		b[0] = v
		seeds[fmt.Sprintf("version-%d", v)] = b
	}
	for bit := range 8 {
		b := bytes.Clone(golden)
		b[1] |= 1 << bit
		seeds[fmt.Sprintf("flag-bit-%d", bit)] = b
	}
	keyring, err := NewKeyring(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keyring.Seal(bytes.Clone(golden))
	if err != nil {
		t.Fatal(err)
	}
	seeds["signed-golden"] = sealed
	for _, a := range []byte{0, byte(maxAction) + 1, 0xff} {
		b := bytes.Clone(golden)
		b[2] = a
		seeds[fmt.Sprintf("action-%d", a)] = b
	}
	b := bytes.Clone(golden)
	clear(b[3:11])
	seeds["seq-0"] = b

	// Offsets of the golden message's length prefixes.
	cacheAt := headerLen
	sourceAt := cacheAt + 1 + len(goldenMessage.Cache)
	traceAt := sourceAt + 1 + len(goldenMessage.Source)
	keyAt := traceAt + 1 + len(goldenMessage.TraceParent)
	set := func(name string, at int, v ...byte) {
		b := bytes.Clone(golden)
		copy(b[at:], v)
		seeds[name] = b
	}
	set("cache-length-0", cacheAt, 0)
	set("cache-length-max-plus-1", cacheAt, MaxCacheNameLen+1)
	set("cache-length-255", cacheAt, 0xff)
	set("source-length-0", sourceAt, 0)
	set("traceparent-length-255", traceAt, 0xff)
	set("key-length-65535", keyAt, 0xff, 0xff)
	set("key-length-plus-1", keyAt, byte(len(goldenMessage.Key)+1))
	set("key-length-minus-1", keyAt, byte(len(goldenMessage.Key)-1))
	c := bytes.Clone(clearMsg)
	binary.LittleEndian.PutUint16(c[len(c)-2:], 1)
	seeds["key-on-clear"] = append(c, 'k')

	for _, n := range []int{1, 2, 3, 10, headerLen, minMessageLen - 1, cacheAt + 1, sourceAt, sourceAt + 3, traceAt,
		traceAt + 20, keyAt, keyAt + 1, keyAt + 2, len(golden) - 1} {
		seeds[fmt.Sprintf("truncated-%03d", n)] = golden[:n]
	}
	for n := range len(clearMsg) {
		seeds[fmt.Sprintf("truncated-clear-%02d", n)] = clearMsg[:n]
	}
	seeds["trailing-1"] = append(bytes.Clone(golden), 0)
	seeds["trailing-message"] = append(bytes.Clone(golden), golden...)
	return seeds
}

// sealedSeeds returns the named inputs of FuzzKeyringOpenReseal's seed corpus:
// messages sealed with fuzzKey (they open), the same with a byte of the
// body or of the signature changed, unsigned, and too short.
func sealedSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	keyring, err := NewKeyring(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(b []byte) []byte {
		s, err := keyring.Seal(bytes.Clone(b))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	golden, _ := hex.DecodeString(goldenHex)
	clearMsg, _ := hex.DecodeString(goldenClearHex)
	g := seal(golden)
	seeds := map[string][]byte{
		"valid-golden":       g,
		"valid-golden-clear": seal(clearMsg),
		"valid-not-message":  seal([]byte{WireVersion, 0, 'x'}),
		"unsigned-golden":    golden,
		"short":              g[:SignatureLen+1],
		"signature-only":     g[len(g)-SignatureLen-2:],
	}
	for _, at := range []int{0, 2, len(golden) - 1, len(golden), len(g) - 1} {
		b := bytes.Clone(g)
		b[at] ^= 1
		seeds[fmt.Sprintf("bit-flipped-at-%02d", at)] = b
	}
	seeds["flag-cleared"] = func() []byte { b := bytes.Clone(g); b[1] = 0; return b }()
	return seeds
}

// writeOrCheckSeeds compares the seed-* files of testdata/fuzz/<fuzzer>
// with seeds, or rewrites them when $STRATA_WRITE_SEEDS is 1.
func writeOrCheckSeeds(t *testing.T, fuzzer string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzer)
	file := func(data []byte) []byte { return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data) }
	old, err := filepath.Glob(filepath.Join(dir, "seed-*"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(seeds))
	for name := range seeds {
		names = append(names, "seed-"+name)
	}
	slices.Sort(names)
	if os.Getenv("STRATA_WRITE_SEEDS") == "1" {
		for _, f := range old {
			_ = os.Remove(f)
		}
		_ = os.MkdirAll(dir, 0o755)
		for _, name := range names {
			if err := os.WriteFile(filepath.Join(dir, name), file(seeds[strings.TrimPrefix(name, "seed-")]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for i := range old {
		old[i] = filepath.Base(old[i])
	}
	if !slices.Equal(old, names) {
		t.Fatalf("%s holds %d seeds, want %d: regenerate with STRATA_WRITE_SEEDS=1 go test -run %s", dir, len(old), len(names), t.Name())
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, file(seeds[strings.TrimPrefix(name, "seed-")])) {
			t.Errorf("%s/%s is out of date (%v): regenerate with STRATA_WRITE_SEEDS=1 go test -run %s", dir, name, err, t.Name())
		}
	}
}

// TestMessageSeedCorpus keeps FuzzDecodeMessage's committed seeds equal to
// messageSeeds and checks each decodes, or fails, as its name says.
func TestMessageSeedCorpus(t *testing.T) {
	seeds := messageSeeds(t)
	for name, data := range seeds {
		_, err := DecodeMessage(data)
		if strings.HasPrefix(name, "valid-") != (err == nil) {
			t.Errorf("seed %s: DecodeMessage error %v", name, err)
		}
	}
	writeOrCheckSeeds(t, "FuzzDecodeMessage", seeds)
}

// TestSealedSeedCorpus does the same for FuzzKeyringOpenReseal.
func TestSealedSeedCorpus(t *testing.T) {
	keyring, _ := NewKeyring(fuzzKey)
	seeds := sealedSeeds(t)
	for name, data := range seeds {
		_, err := keyring.Open(nil, data)
		if strings.HasPrefix(name, "valid-") != (err == nil) {
			t.Errorf("seed %s: Open error %v", name, err)
		}
	}
	writeOrCheckSeeds(t, "FuzzKeyringOpenReseal", seeds)
}

// FuzzKeyringOpenReseal checks that Open never panics, that every error wraps
// ErrBadSignature, and that what it accepts is the payload's body with
// FlagSigned cleared, which Seal turns back into the very same payload.
//
//	go test -run '^$' -fuzz FuzzKeyringOpenReseal -fuzztime 60s ./backplane
func FuzzKeyringOpenReseal(f *testing.F) {
	for _, s := range sealedSeeds(f) {
		f.Add(s)
	}
	keyring, err := NewKeyring(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		in := bytes.Clone(payload)
		body, err := keyring.Open(nil, payload)
		if !bytes.Equal(in, payload) {
			t.Fatalf("Open changed its payload")
		}
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Open error %v does not wrap ErrBadSignature", err)
			}
			return
		}
		if len(body) != len(payload)-SignatureLen || body[1]&FlagSigned != 0 {
			t.Fatalf("Open(% x) = % x: want the body with FlagSigned cleared", payload, body)
		}
		again, err := keyring.Seal(body)
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("Seal(Open(payload)) = % x, %v; want the payload % x", again, err, payload)
		}
	})
}

// TestDecodeMessageRefusesOversizedInput is the decode-side bound: a
// payload longer than MaxMessageLen is corrupt however it starts, and
// costs no allocation beyond the error.
func TestDecodeMessageRefusesOversizedInput(t *testing.T) {
	longest := Message{Cache: strings.Repeat("c", MaxCacheNameLen), Source: strings.Repeat("s", MaxSourceLen),
		TraceParent: strings.Repeat("t", MaxTraceParentLen), Seq: 1, Action: ActionSet, Key: strings.Repeat("k", MaxKeyLen),
		Value: make([]byte, MaxValueLen)}
	b, err := longest.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeMessage(b); err != nil {
		t.Fatalf("the longest valid message: %v", err)
	}
	over := append(b, 0)
	_, err = DecodeMessage(over)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes, longer than any message (MaxMessageLen is %d)", len(over), MaxMessageLen)) {
		t.Fatalf("DecodeMessage of %d bytes: %v, want ErrCorrupt naming the size and the limit", len(over), err)
	}
	huge := append(bytes.Clone(b), make([]byte, 1<<20)...)
	if perRun := allocatedPerRun(func() { _, _ = DecodeMessage(huge) }); perRun > 4096 {
		t.Errorf("DecodeMessage of %d bytes allocates %d bytes per call, want a few hundred (its error), nothing like the input", len(huge), perRun)
	}
}

// TestKeyringOpenRefusesOversizedPayload: Open refuses a payload longer
// than MaxPayloadLen without hashing or copying it.
func TestKeyringOpenRefusesOversizedPayload(t *testing.T) {
	keyring, _ := NewKeyring(fuzzKey)
	golden, _ := hex.DecodeString(goldenHex)
	sealed, err := keyring.Seal(append(bytes.Clone(golden), make([]byte, MaxMessageLen-len(golden))...))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != MaxPayloadLen {
		t.Fatalf("sealed %d bytes, MaxPayloadLen is %d", len(sealed), MaxPayloadLen)
	}
	if _, err := keyring.Open(nil, sealed); err != nil {
		t.Fatalf("Open of a %d-byte payload signed with the key: %v", len(sealed), err)
	}
	huge := make([]byte, 1<<20)
	copy(huge, sealed)
	_, err = keyring.Open(nil, huge)
	if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), fmt.Sprintf("MaxPayloadLen is %d", MaxPayloadLen)) {
		t.Fatalf("Open of %d bytes: %v, want ErrBadSignature naming the limit", len(huge), err)
	}
	if perRun := allocatedPerRun(func() { _, _ = keyring.Open(nil, huge) }); perRun > 4096 {
		t.Errorf("Open of %d bytes allocates %d bytes per call, want a few hundred (its error), nothing like the input", len(huge), perRun)
	}
}

// allocatedPerRun returns the bytes f allocates per call, over 50 calls.
func allocatedPerRun(f func()) uint64 {
	const runs = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}
