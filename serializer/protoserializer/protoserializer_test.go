package protoserializer_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stratacache/strata/serializer/protoserializer"
	"github.com/stratacache/strata/serializer/protoserializer/internal/testpb"
)

// conformance_test.go runs the shared suite with messages; these tests check
// what is particular to protocol buffers.

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

// TestUnmarshalIntoAMessage decodes the suite's samples into a message (a
// *pb.User, rather than the **pb.User the suite and core use).
func TestUnmarshalIntoAMessage(t *testing.T) {
	s := protoserializer.New()
	for _, v := range samples().Values {
		t.Run(v.Name, func(t *testing.T) {
			m := v.Value.(proto.Message)
			b, err := s.Marshal(m)
			if err != nil {
				t.Fatalf("Marshal(%T): %v", m, err)
			}
			into := m.ProtoReflect().New().Interface()
			if err := s.Unmarshal(b, into); err != nil {
				t.Fatalf("Unmarshal into %T: %v", m, err)
			}
			if !proto.Equal(into, m) {
				t.Fatalf("round trip into a message changed it:\n got %v\nwant %v", into, m)
			}
		})
	}
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

func TestEmptyMessageIsNotNilBytes(t *testing.T) {
	if b, err := protoserializer.New().Marshal(&testpb.Record{}); b == nil || err != nil {
		t.Fatalf("Marshal of an empty message = %#v, %v; want an empty, non-nil slice", b, err)
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
}

func TestEmptyInputIsAnEmptyMessage(t *testing.T) {
	// Protocol buffers encode an empty message as zero bytes, so empty
	// input is valid (Samples.EmptyIsValid; this checks it is empty).
	var r *testpb.Record
	if err := protoserializer.New().Unmarshal(nil, &r); err != nil || r == nil || !proto.Equal(r, &testpb.Record{}) {
		t.Fatalf("Unmarshal(nil) = %v, %v; want an empty message", r, err)
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
