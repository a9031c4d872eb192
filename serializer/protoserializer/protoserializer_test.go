package protoserializer_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stratacache/strata/serializer/protoserializer"
	"github.com/stratacache/strata/serializer/protoserializer/internal/testpb"
)

// serializertest.Run checks a serializer with Go values (structs, maps,
// ints) that a protocol buffer serializer refuses by design, so these tests
// check the same properties with messages: round trips, fresh bytes, no
// retained input, corrupt and truncated input, bad targets, unsupported
// values, concurrency.

func sampleRecord() *testpb.Record {
	return &testpb.Record{
		Id:       42,
		Name:     "Ada \u00e9\u4e16 \"quoted\" \\ <html>&",
		Score:    98.6,
		Active:   true,
		Count:    math.MaxUint32,
		Tags:     []string{"a", "", "c"},
		Attrs:    map[string]string{"k": "v", "": "empty key"},
		Raw:      []byte{0, 1, 2, 0xfe, 0xff},
		Created:  timestamppb.New(time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC)),
		Parent:   &testpb.Record{Id: 1, Name: "parent"},
		Nested:   &testpb.Nested{Key: "n", Value: -3},
		Children: []*testpb.Nested{{Key: "x", Value: 1}, {Key: "y", Value: 2}},
		Optional: proto.Int64(0),
		Choice:   &testpb.Record_Text{Text: "chosen"},
	}
}

// roundTrip marshals m and unmarshals it the way core does (var v T;
// Unmarshal(b, &v)) and into a message, and compares.
func roundTrip[T proto.Message](t *testing.T, m T) {
	t.Helper()
	s := protoserializer.New()
	b, err := s.Marshal(m)
	if err != nil {
		t.Fatalf("Marshal(%T): %v", m, err)
	}
	var got T
	if err := s.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal into *%T: %v", m, err)
	}
	if !proto.Equal(got, m) {
		t.Fatalf("round trip of %T changed it:\n got %v\nwant %v", m, got, m)
	}
	into := m.ProtoReflect().New().Interface()
	if err := s.Unmarshal(b, into); err != nil {
		t.Fatalf("Unmarshal into %T: %v", m, err)
	}
	if !proto.Equal(into, m) {
		t.Fatalf("round trip into a message changed it:\n got %v\nwant %v", into, m)
	}
}

func TestRoundTrip(t *testing.T) {
	big := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
	list, _ := structpb.NewList([]any{1.5, "x", true, nil, map[string]any{"k": "v"}})
	t.Run("record", func(t *testing.T) { roundTrip(t, sampleRecord()) })
	t.Run("empty record", func(t *testing.T) { roundTrip(t, &testpb.Record{}) })
	t.Run("oneof number", func(t *testing.T) { roundTrip(t, &testpb.Record{Choice: &testpb.Record_Number{Number: math.MinInt64}}) })
	t.Run("1 MiB bytes", func(t *testing.T) {
		roundTrip(t, &testpb.Record{Raw: big, Name: strings.Repeat("0123456789abcdef", 1<<16)})
	})
	t.Run("string wrapper", func(t *testing.T) { roundTrip(t, wrapperspb.String("h\u00e9llo")) })
	t.Run("empty string wrapper", func(t *testing.T) { roundTrip(t, wrapperspb.String("")) })
	t.Run("int64 wrapper", func(t *testing.T) { roundTrip(t, wrapperspb.Int64(math.MaxInt64)) })
	t.Run("double wrapper", func(t *testing.T) { roundTrip(t, wrapperspb.Double(math.SmallestNonzeroFloat64)) })
	t.Run("timestamp", func(t *testing.T) {
		roundTrip(t, timestamppb.New(time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)))
	})
	t.Run("struct", func(t *testing.T) {
		roundTrip(t, &structpb.Struct{Fields: map[string]*structpb.Value{"list": structpb.NewListValue(list)}})
	})
	t.Run("item list", func(t *testing.T) {
		roundTrip(t, &testpb.ItemList{Items: []*testpb.Item{{Id: 1, Tags: []string{"a"}}, {}, {Description: "third"}}})
	})
}

func TestUnmarshalTargets(t *testing.T) {
	s := protoserializer.New()
	want := sampleRecord()
	b, err := s.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("pointer to a nil message pointer", func(t *testing.T) {
		var got *testpb.Record
		if err := s.Unmarshal(b, &got); err != nil || !proto.Equal(got, want) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("pointer to a message pointer gets a new message", func(t *testing.T) {
		shared := &testpb.Record{Name: "shared"}
		got := shared
		if err := s.Unmarshal(b, &got); err != nil || !proto.Equal(got, want) {
			t.Fatalf("got %v, %v", got, err)
		}
		if shared.GetName() != "shared" || got == shared {
			t.Fatal("Unmarshal decoded into the message the target pointed to")
		}
	})
	t.Run("message is reset", func(t *testing.T) {
		got := &testpb.Record{Tags: []string{"old"}, Id: 7}
		if err := s.Unmarshal(b, got); err != nil || !proto.Equal(got, want) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("proto.Message holding a message", func(t *testing.T) {
		var got proto.Message = &testpb.Record{}
		if err := s.Unmarshal(b, &got); err != nil || !proto.Equal(got, want) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	var nilRecord *testpb.Record
	var nilMessage proto.Message
	var anything any
	for name, target := range map[string]any{
		"nil":                            nil,
		"nil message":                    nilRecord,
		"non-pointer":                    testpb.Nested{},
		"pointer to a struct":            &struct{ A int }{},
		"pointer to a nil proto.Message": &nilMessage,
		"pointer to a nil any":           &anything,
		"pointer to a string":            new(string),
	} {
		t.Run("bad target "+name, func(t *testing.T) {
			err := s.Unmarshal(b, target)
			if err == nil || !strings.HasPrefix(err.Error(), "protoserializer: unmarshal into ") {
				t.Fatalf("Unmarshal into %T = %v, want an error naming the target", target, err)
			}
		})
	}
}

func TestMarshalRefusesNonMessages(t *testing.T) {
	s := protoserializer.New()
	var nilRecord *testpb.Record
	for _, tt := range []struct {
		v    any
		want string
	}{
		{struct{ ID int }{1}, "marshal struct { ID int }: not a protocol buffer message"},
		{map[string]int{"a": 1}, "marshal map[string]int: not a protocol buffer message"},
		{42, "marshal int: not a protocol buffer message"},
		{nil, "marshal <nil>: not a protocol buffer message"},
		{make(chan int), "marshal chan int: not a protocol buffer message"},
		{func() {}, "marshal func(): not a protocol buffer message"},
		{testpb.Nested{}, "marshal testpb.Nested: not a protocol buffer message"}, // the struct, not its pointer
		{nilRecord, "marshal *testpb.Record: a nil message cannot round-trip"},
		{&testpb.Record{Name: "\xff"}, "marshal *testpb.Record: "}, // invalid UTF-8 in a proto3 string
	} {
		b, err := s.Marshal(tt.v)
		if err == nil || !strings.HasPrefix(err.Error(), "protoserializer: "+tt.want) {
			t.Errorf("Marshal(%T) = % x, %v; want an error starting %q", tt.v, b, err, tt.want)
		}
	}
	_, err := s.Marshal(struct{}{})
	if !errors.Is(err, protoserializer.ErrNotMessage) {
		t.Errorf("errors.Is(%v, ErrNotMessage) = false", err)
	}
}

func TestMarshalReturnsFreshBytes(t *testing.T) {
	s := protoserializer.New()
	msgs := []proto.Message{sampleRecord(), &testpb.Record{}, &testpb.Record{Name: strings.Repeat("longer", 100)}, wrapperspb.String("x")}
	outs, saved := make([][]byte, len(msgs)), make([][]byte, len(msgs))
	for i, m := range msgs {
		b, err := s.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		outs[i], saved[i] = b, bytes.Clone(b)
	}
	for i := range outs {
		if !bytes.Equal(outs[i], saved[i]) {
			t.Fatalf("later Marshal calls changed the bytes Marshal #%d returned", i+1)
		}
	}
	if b, _ := s.Marshal(&testpb.Record{}); b == nil {
		t.Fatal("an empty message marshals to nil bytes, want an empty slice")
	}
}

func TestUnmarshalDoesNotRetainData(t *testing.T) {
	s := protoserializer.New()
	want := &testpb.Record{Name: "name", Raw: []byte("raw bytes"), Tags: []string{"tag"}, Attrs: map[string]string{"k": "v"}}
	data, _ := s.Marshal(want)
	var got *testpb.Record
	if err := s.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xff
	}
	if !proto.Equal(got, want) {
		t.Fatalf("overwriting Unmarshal's input changed the decoded value to %v", got)
	}
}

func TestCorruptInput(t *testing.T) {
	s := protoserializer.New()
	for name, data := range map[string][]byte{
		"garbage":            []byte("\xff\x00\xfe garbage \x01\x02"),
		"invalid wire type":  {0x0f},
		"field number zero":  {0x00, 0x01},
		"overlong varint":    bytes.Repeat([]byte{0xff}, 11),
		"invalid UTF-8 name": {0x12, 0x01, 0xff},
	} {
		var r *testpb.Record
		if err := s.Unmarshal(data, &r); err == nil {
			t.Errorf("Unmarshal of %s (% x) succeeded, want an error", name, data)
		}
	}
	// Random bytes and bit flips of a valid encoding: any result but a
	// panic.
	rng := rand.New(rand.NewPCG(1, 2))
	valid, _ := s.Marshal(sampleRecord())
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
		var r *testpb.Record
		var st *structpb.Struct
		_ = s.Unmarshal(data, &r)
		_ = s.Unmarshal(data, &st)
	}
}

func TestEmptyInputIsAnEmptyMessage(t *testing.T) {
	// Protocol buffers encode an empty message as zero bytes, so empty
	// input is valid (serializertest would call it corrupt).
	var r *testpb.Record
	if err := protoserializer.New().Unmarshal(nil, &r); err != nil || r == nil || !proto.Equal(r, &testpb.Record{}) {
		t.Fatalf("Unmarshal(nil) = %v, %v; want an empty message", r, err)
	}
}

func TestTruncatedInput(t *testing.T) {
	s := protoserializer.New()
	m := sampleRecord()
	m.Name = strings.Repeat("x", 200)
	data, _ := s.Marshal(m)
	for n := range len(data) {
		var r *testpb.Record
		_ = s.Unmarshal(data[:n], &r)
	}
	cut := bytes.Index(data, []byte(strings.Repeat("x", 100))) + 50
	var r *testpb.Record
	if err := s.Unmarshal(data[:cut], &r); err == nil {
		t.Errorf("Unmarshal of the first %d of %d bytes (cut inside a string) succeeded, want an error", cut, len(data))
	}
}

func TestDeepNestingIsAnError(t *testing.T) {
	// 20,000 nested parents: deeper than proto's recursion limit (10,000).
	var data []byte
	for range 20_000 {
		data = append(append([]byte{0x52}, protowireLen(len(data))...), data...)
	}
	var r *testpb.Record
	if err := protoserializer.New().Unmarshal(data, &r); err == nil {
		t.Fatal("Unmarshal of 20,000 nested messages succeeded, want an error")
	}
}

// protowireLen is the varint encoding of n.
func protowireLen(n int) []byte {
	var b []byte
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

func TestConcurrent(t *testing.T) {
	s := protoserializer.New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				m := sampleRecord()
				m.Id = int64(g*1000 + i)
				b, err := s.Marshal(m)
				if err != nil {
					t.Errorf("Marshal: %v", err)
					return
				}
				var got *testpb.Record
				if err := s.Unmarshal(b, &got); err != nil || !proto.Equal(got, m) {
					t.Errorf("concurrent round trip: %v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzUnmarshal(f *testing.F) {
	s := protoserializer.New()
	b, _ := s.Marshal(sampleRecord())
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r *testpb.Record
		if err := s.Unmarshal(data, &r); err != nil {
			return
		}
		if _, err := s.Marshal(r); err != nil {
			t.Fatalf("Marshal of a decoded message: %v", err)
		}
	})
}
