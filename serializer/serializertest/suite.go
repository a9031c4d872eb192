package serializertest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/serializer"
)

// Run runs the conformance suite against s, as subtests of t, with the
// suite's own sample values: Go structs, maps, slices, strings and numbers.
// See the package documentation for what it checks.
func Run(t *testing.T, s serializer.Serializer) {
	t.Helper()
	RunWith(t, s, defaultSamples())
}

// Samples are the values RunWith checks a serializer with, for a serializer
// that encodes only some types (protoserializer takes only protocol buffer
// messages). Each value is decoded into a new value of its own type, through
// a pointer (for a value of type *pb.User, into a **pb.User), as core does.
type Samples struct {
	// Values are round-tripped (RoundTrip) and marshalled one after the
	// other (MarshalReturnsFreshBytes); Concurrent round-trips those that
	// encode in under 64 KiB from several goroutines. Give values of every
	// kind the serializer takes, small and large. Required.
	Values []Sample
	// Record is a typical value: UnmarshalDoesNotRetainData, CorruptInput,
	// TruncatedInput, BadTarget and Concurrent decode its encoding into its
	// type.
	// Give it a string of at least 100 'x' bytes: TruncatedInput cuts its
	// encoding inside it (else in the middle, which a format like protobuf
	// may read as a shorter valid value). Its type's zero value must not be
	// a valid target (a struct, a pointer). Required.
	Record any
	// Mismatched, if not nil, is a value of another type whose encoding
	// must not decode into Record's type (CorruptInput). Leave it nil for a
	// format that cannot tell (protobuf decodes another message's fields as
	// unknown ones).
	Mismatched any
	// EmptyIsValid says that an empty input is a valid encoding (protobuf's
	// empty message): CorruptInput then checks that it decodes, rather than
	// that it is an error.
	EmptyIsValid bool
	// Equal reports whether a decoded value equals the one encoded (nil: the
	// suite's comparison, see the package documentation). protoserializer
	// uses proto.Equal.
	Equal func(got, want any) bool
}

// Sample is a named value of Samples.Values.
type Sample struct {
	Name  string
	Value any
}

// RunWith runs the conformance suite against s with the sample values of
// samples, as subtests of t: RoundTrip, MarshalReturnsFreshBytes and
// Concurrent with samples.Values, the other checks with samples.Record, and
// Unsupported with the suite's own values (a chan, a func, structs holding
// them), which every serializer must refuse. Samples without Values or
// Record fail t.
func RunWith(t *testing.T, s serializer.Serializer, samples Samples) {
	t.Helper()
	if len(samples.Values) == 0 || samples.Record == nil {
		t.Fatalf("serializertest: Samples need Values and a Record; got %d values, Record %T", len(samples.Values), samples.Record)
	}
	if samples.Equal == nil {
		samples.Equal = equal
	}
	x := &suite{s: s, Samples: samples}
	t.Run("RoundTrip", x.testRoundTrips)
	t.Run("MarshalReturnsFreshBytes", x.testFreshBytes)
	t.Run("UnmarshalDoesNotRetainData", x.testNotRetained)
	t.Run("CorruptInput", x.testCorrupt)
	t.Run("TruncatedInput", x.testTruncated)
	t.Run("BadTarget", x.testBadTarget)
	t.Run("Unsupported", x.testUnsupported)
	t.Run("Concurrent", x.testConcurrent)
}

// suite is one run of the suite.
type suite struct {
	s serializer.Serializer
	Samples
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

// newTarget returns a pointer to a new zero value of v's type (new(any) for
// a nil v), for Unmarshal.
func newTarget(v any) any {
	if v == nil {
		return new(any)
	}
	return reflect.New(reflect.TypeOf(v)).Interface()
}

// elem returns what target, from newTarget, points to.
func elem(target any) any { return reflect.ValueOf(target).Elem().Interface() }

// roundTrip marshals v, unmarshals into a new value of its type and
// compares.
func (x *suite) roundTrip(t *testing.T, v any) {
	t.Helper()
	data := marshal(t, x.s, v)
	target := newTarget(v)
	if err := unmarshal(t, x.s, data, target); err != nil {
		t.Fatalf("Unmarshal of Marshal(%T): %v", v, err)
	}
	if got := elem(target); !x.Equal(got, v) {
		t.Fatalf("round trip of %T changed it:\n got %s\nwant %s", v, show(got), show(v))
	}
}

func show(v any) string {
	s := fmt.Sprintf("%+v", v)
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d chars)", len(s))
	}
	return s
}

// defaultSamples are the values Run uses.
func defaultSamples() Samples {
	big := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
	bigString := strings.Repeat("0123456789abcdef", 1<<16)
	one := 1
	ptrToPtr := &one
	r := sampleRecord()
	long := sampleRecord()
	long.Name = strings.Repeat("x", 200)
	return Samples{
		Values: []Sample{
			{"struct", sampleRecord()},
			{"pointer to struct", &r},
			{"zero struct", record{}},
			{"empty struct", struct{}{}},
			{"slice of structs", []record{sampleRecord(), {}, {Name: "third"}}},
			{"map of strings", map[string]string{"a": "1", "b": "", "\u00e9": "x"}},
			{"map of ints", map[string]int{"min": math.MinInt32, "max": math.MaxInt32}},
			{"map of structs", map[string]nested{"a": {"k", 1}}},
			{"map with int keys", map[int]string{1: "one", -2: "minus two"}},
			{"empty map", map[string]int{}},
			{"nil map", map[string]int(nil)},
			{"int slice", []int{1, -2, 3, 0}},
			{"string slice", []string{"a", "", "\x00c"}},
			{"nested slices", [][]int{{1}, {}, {2, 3}}},
			{"bytes", []byte{0, 0xff, 0x80, '\n'}},
			{"empty slice", []int{}},
			{"nil slice", []int(nil)},
			{"array", [3]int{1, 2, 3}},
			{"string", "hello"},
			{"empty string", ""},
			{"unicode string", "h\u00e9llo, \u4e16\u754c \U0001F600"},
			{"string with escapes", "\x00\t\n\r\"\\/<>&'\u2028\u2029"},
			{"int", 42},
			{"zero int", 0},
			{"negative int", -42},
			{"max int64", int64(math.MaxInt64)},
			{"min int64", int64(math.MinInt64)},
			{"max uint64", uint64(math.MaxUint64)},
			{"int8", int8(math.MinInt8)},
			{"uint8", uint8(math.MaxUint8)},
			{"float64", 0.1},
			{"negative float64", -2.5e-300},
			{"max float64", math.MaxFloat64},
			{"smallest float64", math.SmallestNonzeroFloat64},
			{"float32", float32(1.1)},
			{"true", true},
			{"false", false},
			{"pointer to int", &one},
			{"pointer to pointer", &ptrToPtr},
			{"nil pointer", (*record)(nil)},
			{"nil interface", nil},
			{"time", time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
			{"1 MiB bytes", big},
			{"1 MiB string in a struct", record{Name: bigString, Raw: big}},
		},
		Record:     long,
		Mismatched: "a string, not a record",
	}
}

func (x *suite) testRoundTrips(t *testing.T) {
	for _, v := range x.Values {
		t.Run(v.Name, func(t *testing.T) { x.roundTrip(t, v.Value) })
	}
}

// testFreshBytes checks that Marshal does not hand out a buffer it reuses:
// the bytes each call returned survive later calls, shorter and longer.
func (x *suite) testFreshBytes(t *testing.T) {
	outs, saved := make([][]byte, len(x.Values)), make([][]byte, len(x.Values))
	for i, v := range x.Values {
		outs[i] = marshal(t, x.s, v.Value)
		saved[i] = bytes.Clone(outs[i])
	}
	for i := range outs {
		if !bytes.Equal(outs[i], saved[i]) {
			t.Fatalf("later Marshal calls changed the bytes Marshal of %s returned", x.Values[i].Name)
		}
	}
}

// testNotRetained checks that Unmarshal copies what it needs: changing the
// input afterwards does not change the decoded value.
func (x *suite) testNotRetained(t *testing.T) {
	data := marshal(t, x.s, x.Record)
	target := newTarget(x.Record)
	if err := unmarshal(t, x.s, data, target); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	for i := range data {
		data[i] = 0xff
	}
	if got := elem(target); !x.Equal(got, x.Record) {
		t.Fatalf("overwriting Unmarshal's input changed the decoded value to %s", show(got))
	}
}

// testCorrupt checks that garbage is an error, never a panic.
func (x *suite) testCorrupt(t *testing.T) {
	bad := []struct {
		name string
		data []byte
	}{{"garbage", []byte("\xff\x00\xfe garbage \x01\x02")}}
	if x.Mismatched != nil {
		bad = append(bad, struct {
			name string
			data []byte
		}{fmt.Sprintf("mismatched (%T)", x.Mismatched), marshal(t, x.s, x.Mismatched)})
	}
	for _, data := range [][]byte{{}, nil} {
		target := newTarget(x.Record)
		err := unmarshal(t, x.s, data, target)
		switch {
		case x.EmptyIsValid && err != nil:
			t.Errorf("Unmarshal of empty input (%#v) into %T: %v; want a value (Samples.EmptyIsValid)", data, target, err)
		case !x.EmptyIsValid && err == nil:
			t.Errorf("Unmarshal of empty input (%#v) into %T succeeded, want an error", data, target)
		}
	}
	for _, c := range bad {
		target := newTarget(x.Record)
		if err := unmarshal(t, x.s, c.data, target); err == nil {
			t.Errorf("Unmarshal of %s input (% x) into %T succeeded, want an error", c.name, short(c.data), target)
		}
	}
	// Random bytes and bit flips of a valid encoding: any result but a panic.
	rng := rand.New(rand.NewPCG(1, 2))
	valid := marshal(t, x.s, x.Record)
	for i := range 2000 {
		var data []byte
		if i%2 == 0 || len(valid) == 0 {
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
		target := newTarget(x.Record)
		var anyV any
		if check(t, fmt.Sprintf("Unmarshal(% x)", short(data)), func() {
			_ = x.s.Unmarshal(data, target)
			_ = x.s.Unmarshal(data, &anyV)
		}) {
			return
		}
	}
}

// testTruncated checks that every prefix of a valid encoding decodes without
// a panic, and that one cut in the middle of the value is an error.
func (x *suite) testTruncated(t *testing.T) {
	data := marshal(t, x.s, x.Record)
	for n := range len(data) {
		target := newTarget(x.Record)
		if check(t, fmt.Sprintf("Unmarshal of the first %d of %d bytes", n, len(data)), func() { _ = x.s.Unmarshal(data[:n], target) }) {
			return
		}
	}
	// Cut in the middle of the long string if the format shows it as is,
	// else in the middle of the data.
	cut := len(data) / 2
	if i := bytes.Index(data, []byte(strings.Repeat("x", 100))); i >= 0 {
		cut = i + 50
	}
	target := newTarget(x.Record)
	if err := unmarshal(t, x.s, data[:cut], target); err == nil {
		t.Errorf("Unmarshal of the first %d of %d bytes succeeded, want an error", cut, len(data))
	}
}

// testBadTarget checks that a target Unmarshal cannot fill is an error: nil,
// a nil pointer to Record's type, and the zero value of Record's type (a
// non-pointer, or a nil pointer).
func (x *suite) testBadTarget(t *testing.T) {
	data := marshal(t, x.s, x.Record)
	typ := reflect.TypeOf(x.Record)
	zeroName := "non-pointer"
	if typ.Kind() == reflect.Pointer {
		zeroName = "nil " + typ.String()
	}
	for name, target := range map[string]any{
		"nil":         nil,
		"nil pointer": reflect.Zero(reflect.PointerTo(typ)).Interface(),
		zeroName:      reflect.Zero(typ).Interface(),
	} {
		if err := unmarshal(t, x.s, data, target); err == nil {
			t.Errorf("Unmarshal into a %s target (%T) succeeded, want an error", name, target)
		}
	}
}

// testUnsupported checks that values that cannot round-trip are refused at
// Marshal.
func (x *suite) testUnsupported(t *testing.T) {
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
		check(t, "Marshal of a "+name, func() { _, err = x.s.Marshal(v) })
		if err == nil {
			t.Errorf("Marshal of a %s succeeded, want an error", name)
		}
	}
}

// testConcurrent round-trips Record and the sample values that encode in
// under 64 KiB from 8 goroutines at once, each its own sequence of them;
// run with -race.
func (x *suite) testConcurrent(t *testing.T) {
	vs := []Sample{{"Record", x.Record}}
	for _, v := range x.Values {
		if len(marshal(t, x.s, v.Value)) < 64<<10 {
			vs = append(vs, v)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				v := vs[(g*7+i)%len(vs)]
				data, err := x.s.Marshal(v.Value)
				if err != nil {
					t.Errorf("Marshal of %s: %v", v.Name, err)
					return
				}
				target := newTarget(v.Value)
				if err := x.s.Unmarshal(data, target); err != nil {
					t.Errorf("Unmarshal of %s: %v", v.Name, err)
					return
				}
				if !x.Equal(elem(target), v.Value) {
					t.Errorf("concurrent round trip changed %s", v.Name)
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
