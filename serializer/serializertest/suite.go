package serializertest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/serializer"
)

// Run runs the conformance suite against s, as subtests of t. See the package
// documentation for what it checks.
func Run(t *testing.T, s serializer.Serializer) {
	t.Helper()
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrips(t, s) })
	t.Run("MarshalReturnsFreshBytes", func(t *testing.T) { testFreshBytes(t, s) })
	t.Run("UnmarshalDoesNotRetainData", func(t *testing.T) { testNotRetained(t, s) })
	t.Run("CorruptInput", func(t *testing.T) { testCorrupt(t, s) })
	t.Run("TruncatedInput", func(t *testing.T) { testTruncated(t, s) })
	t.Run("BadTarget", func(t *testing.T) { testBadTarget(t, s) })
	t.Run("Unsupported", func(t *testing.T) { testUnsupported(t, s) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, s) })
}

// record is a typical cached value: a struct holding a bit of everything.
type record struct {
	ID       int64
	Name     string
	Score    float64
	Active   bool
	Count    uint32
	Tags     []string
	Attrs    map[string]string
	Raw      []byte
	Created  time.Time
	Parent   *record
	Nested   nested
	Children []nested
	Optional *int
}

type nested struct {
	Key   string
	Value int
}

func sampleRecord() record {
	n := 7
	return record{
		ID:       42,
		Name:     "Ada \u00e9\u4e16 \"quoted\" \\ <html>&",
		Score:    98.6,
		Active:   true,
		Count:    math.MaxUint32,
		Tags:     []string{"a", "", "c"},
		Attrs:    map[string]string{"k": "v", "": "empty key"},
		Raw:      []byte{0, 1, 2, 0xfe, 0xff},
		Created:  time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC),
		Parent:   &record{ID: 1, Name: "parent"},
		Nested:   nested{Key: "n", Value: -3},
		Children: []nested{{"x", 1}, {"y", 2}},
		Optional: &n,
	}
}

// check fails t if f panics, naming what it was doing.
func check(t *testing.T, what string, f func()) (panicked bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
			panicked = true
		}
	}()
	f()
	return false
}

func marshal(t *testing.T, s serializer.Serializer, v any) []byte {
	t.Helper()
	var b []byte
	var err error
	if check(t, fmt.Sprintf("Marshal(%T)", v), func() { b, err = s.Marshal(v) }) {
		t.FailNow()
	}
	if err != nil {
		t.Fatalf("Marshal(%T): %v", v, err)
	}
	return b
}

func unmarshal(t *testing.T, s serializer.Serializer, data []byte, v any) error {
	t.Helper()
	var err error
	check(t, fmt.Sprintf("Unmarshal(%d bytes, %T)", len(data), v), func() { err = s.Unmarshal(data, v) })
	return err
}

// roundTrip marshals v, unmarshals into a new T and compares.
func roundTrip[T any](t *testing.T, s serializer.Serializer, v T) {
	t.Helper()
	data := marshal(t, s, v)
	got := new(T)
	if err := unmarshal(t, s, data, got); err != nil {
		t.Fatalf("Unmarshal of Marshal(%T): %v", v, err)
	}
	if !equal(*got, v) {
		t.Fatalf("round trip of %T changed it:\n got %s\nwant %s", v, show(*got), show(v))
	}
}

func show(v any) string {
	s := fmt.Sprintf("%+v", v)
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d chars)", len(s))
	}
	return s
}

func testRoundTrips(t *testing.T, s serializer.Serializer) {
	big := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
	bigString := strings.Repeat("0123456789abcdef", 1<<16)
	one := 1
	ptrToPtr := &one
	cases := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"struct", func(t *testing.T) { roundTrip(t, s, sampleRecord()) }},
		{"pointer to struct", func(t *testing.T) { r := sampleRecord(); roundTrip(t, s, &r) }},
		{"zero struct", func(t *testing.T) { roundTrip(t, s, record{}) }},
		{"empty struct", func(t *testing.T) { roundTrip(t, s, struct{}{}) }},
		{"slice of structs", func(t *testing.T) { roundTrip(t, s, []record{sampleRecord(), {}, {Name: "third"}}) }},
		{"map of strings", func(t *testing.T) { roundTrip(t, s, map[string]string{"a": "1", "b": "", "\u00e9": "x"}) }},
		{"map of ints", func(t *testing.T) { roundTrip(t, s, map[string]int{"min": math.MinInt32, "max": math.MaxInt32}) }},
		{"map of structs", func(t *testing.T) { roundTrip(t, s, map[string]nested{"a": {"k", 1}}) }},
		{"map with int keys", func(t *testing.T) { roundTrip(t, s, map[int]string{1: "one", -2: "minus two"}) }},
		{"empty map", func(t *testing.T) { roundTrip(t, s, map[string]int{}) }},
		{"nil map", func(t *testing.T) { roundTrip(t, s, map[string]int(nil)) }},
		{"int slice", func(t *testing.T) { roundTrip(t, s, []int{1, -2, 3, 0}) }},
		{"string slice", func(t *testing.T) { roundTrip(t, s, []string{"a", "", "\x00c"}) }},
		{"nested slices", func(t *testing.T) { roundTrip(t, s, [][]int{{1}, {}, {2, 3}}) }},
		{"bytes", func(t *testing.T) { roundTrip(t, s, []byte{0, 0xff, 0x80, '\n'}) }},
		{"empty slice", func(t *testing.T) { roundTrip(t, s, []int{}) }},
		{"nil slice", func(t *testing.T) { roundTrip(t, s, []int(nil)) }},
		{"array", func(t *testing.T) { roundTrip(t, s, [3]int{1, 2, 3}) }},
		{"string", func(t *testing.T) { roundTrip(t, s, "hello") }},
		{"empty string", func(t *testing.T) { roundTrip(t, s, "") }},
		{"unicode string", func(t *testing.T) { roundTrip(t, s, "h\u00e9llo, \u4e16\u754c \U0001F600") }},
		{"string with escapes", func(t *testing.T) { roundTrip(t, s, "\x00\t\n\r\"\\/<>&'\u2028\u2029") }},
		{"int", func(t *testing.T) { roundTrip(t, s, 42) }},
		{"zero int", func(t *testing.T) { roundTrip(t, s, 0) }},
		{"negative int", func(t *testing.T) { roundTrip(t, s, -42) }},
		{"max int64", func(t *testing.T) { roundTrip(t, s, int64(math.MaxInt64)) }},
		{"min int64", func(t *testing.T) { roundTrip(t, s, int64(math.MinInt64)) }},
		{"max uint64", func(t *testing.T) { roundTrip(t, s, uint64(math.MaxUint64)) }},
		{"int8", func(t *testing.T) { roundTrip(t, s, int8(math.MinInt8)) }},
		{"uint8", func(t *testing.T) { roundTrip(t, s, uint8(math.MaxUint8)) }},
		{"float64", func(t *testing.T) { roundTrip(t, s, 0.1) }},
		{"negative float64", func(t *testing.T) { roundTrip(t, s, -2.5e-300) }},
		{"max float64", func(t *testing.T) { roundTrip(t, s, math.MaxFloat64) }},
		{"smallest float64", func(t *testing.T) { roundTrip(t, s, math.SmallestNonzeroFloat64) }},
		{"float32", func(t *testing.T) { roundTrip(t, s, float32(1.1)) }},
		{"true", func(t *testing.T) { roundTrip(t, s, true) }},
		{"false", func(t *testing.T) { roundTrip(t, s, false) }},
		{"pointer to int", func(t *testing.T) { roundTrip(t, s, &one) }},
		{"pointer to pointer", func(t *testing.T) { roundTrip(t, s, &ptrToPtr) }},
		{"nil pointer", func(t *testing.T) { roundTrip(t, s, (*record)(nil)) }},
		{"nil interface", func(t *testing.T) { roundTrip[any](t, s, nil) }},
		{"time", func(t *testing.T) { roundTrip(t, s, time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)) }},
		{"1 MiB bytes", func(t *testing.T) { roundTrip(t, s, big) }},
		{"1 MiB string in a struct", func(t *testing.T) { roundTrip(t, s, record{Name: bigString, Raw: big}) }},
	}
	for _, c := range cases {
		t.Run(c.name, c.fn)
	}
}

// testFreshBytes checks that Marshal does not hand out a buffer it reuses:
// the bytes each call returned survive later calls, shorter and longer.
func testFreshBytes(t *testing.T, s serializer.Serializer) {
	values := []any{sampleRecord(), record{}, record{Name: strings.Repeat("longer", 100)}, record{ID: 1}, "x"}
	outs, saved := make([][]byte, len(values)), make([][]byte, len(values))
	for i, v := range values {
		outs[i] = marshal(t, s, v)
		saved[i] = bytes.Clone(outs[i])
	}
	for i := range outs {
		if !bytes.Equal(outs[i], saved[i]) {
			t.Fatalf("later Marshal calls changed the bytes Marshal #%d returned", i+1)
		}
	}
}

// testNotRetained checks that Unmarshal copies what it needs: changing the
// input afterwards does not change the decoded value.
func testNotRetained(t *testing.T, s serializer.Serializer) {
	want := record{Name: "name", Raw: []byte("raw bytes"), Tags: []string{"tag"}, Attrs: map[string]string{"k": "v"}}
	data := marshal(t, s, want)
	var got record
	if err := unmarshal(t, s, data, &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	for i := range data {
		data[i] = 0xff
	}
	if !equal(got, want) {
		t.Fatalf("overwriting Unmarshal's input changed the decoded value to %+v", got)
	}
}

// testCorrupt checks that garbage is an error, never a panic.
func testCorrupt(t *testing.T, s serializer.Serializer) {
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
		{"garbage", []byte("\xff\x00\xfe garbage \x01\x02")},
		{"type mismatch", marshal(t, s, "a string, not a record")},
	} {
		var r record
		if err := unmarshal(t, s, c.data, &r); err == nil {
			t.Errorf("Unmarshal of %s input (% x) into %T succeeded, want an error", c.name, short(c.data), &r)
		}
	}
	// Random bytes and bit flips of a valid encoding: any result but a panic.
	rng := rand.New(rand.NewPCG(1, 2))
	valid := marshal(t, s, sampleRecord())
	for i := range 2000 {
		var data []byte
		if i%2 == 0 {
			data = make([]byte, rng.IntN(64))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		} else {
			data = bytes.Clone(valid)
			for range 1 + rng.IntN(4) {
				data[rng.IntN(len(data))] ^= 1 << rng.IntN(8)
			}
		}
		var r record
		var anyV any
		if check(t, fmt.Sprintf("Unmarshal(% x)", short(data)), func() {
			_ = s.Unmarshal(data, &r)
			_ = s.Unmarshal(data, &anyV)
		}) {
			return
		}
	}
}

// testTruncated checks that every prefix of a valid encoding decodes without
// a panic, and that one cut in the middle of the value is an error.
func testTruncated(t *testing.T, s serializer.Serializer) {
	v := sampleRecord()
	v.Name = strings.Repeat("x", 200)
	data := marshal(t, s, v)
	for n := range len(data) {
		var r record
		if check(t, fmt.Sprintf("Unmarshal of the first %d of %d bytes", n, len(data)), func() { _ = s.Unmarshal(data[:n], &r) }) {
			return
		}
	}
	// Cut in the middle of the long string if the format shows it as is,
	// else in the middle of the data.
	cut := len(data) / 2
	if i := bytes.Index(data, []byte(strings.Repeat("x", 100))); i >= 0 {
		cut = i + 50
	}
	var r record
	if err := unmarshal(t, s, data[:cut], &r); err == nil {
		t.Errorf("Unmarshal of the first %d of %d bytes succeeded, want an error", cut, len(data))
	}
}

// testBadTarget checks that a target Unmarshal cannot fill is an error.
func testBadTarget(t *testing.T, s serializer.Serializer) {
	data := marshal(t, s, sampleRecord())
	var nilPtr *record
	for name, target := range map[string]any{
		"non-pointer": record{},
		"nil":         nil,
		"nil pointer": nilPtr,
	} {
		if err := unmarshal(t, s, data, target); err == nil {
			t.Errorf("Unmarshal into a %s target succeeded, want an error", name)
		}
	}
}

// testUnsupported checks that values that cannot round-trip are refused at
// Marshal.
func testUnsupported(t *testing.T, s serializer.Serializer) {
	ch := make(chan int)
	for name, v := range map[string]any{
		"chan":                make(chan int),
		"func":                func() {},
		"pointer to chan":     &ch,
		"slice of funcs":      []func(){func() {}},
		"struct with a func":  struct{ F func() }{F: func() {}},
		"struct with a chan":  struct{ C chan int }{C: ch},
		"map holding a chan":  map[string]any{"c": ch},
		"nil func":            (func())(nil),
		"nil chan":            (chan int)(nil),
		"struct with nil fun": struct{ F func() }{},
	} {
		var err error
		check(t, "Marshal of a "+name, func() { _, err = s.Marshal(v) })
		if err == nil {
			t.Errorf("Marshal of a %s succeeded, want an error", name)
		}
	}
}

// testConcurrent marshals and unmarshals from many goroutines at once; run
// with -race.
func testConcurrent(t *testing.T, s serializer.Serializer) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				v := sampleRecord()
				v.ID = int64(g*1000 + i)
				data, err := s.Marshal(v)
				if err != nil {
					t.Errorf("Marshal: %v", err)
					return
				}
				var got record
				if err := s.Unmarshal(data, &got); err != nil {
					t.Errorf("Unmarshal: %v", err)
					return
				}
				if !equal(got, v) {
					t.Errorf("concurrent round trip changed the value: got ID %d, want %d", got.ID, v.ID)
					return
				}
			}
		})
	}
	wg.Wait()
}

func short(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
