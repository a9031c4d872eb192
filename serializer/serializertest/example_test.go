package serializertest_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stratacache/strata/serializer/jsonserializer"
	"github.com/stratacache/strata/serializer/protoserializer"
	"github.com/stratacache/strata/serializer/serializertest"
)

func ExampleRun() {
	// In the serializer's conformance_test.go:
	//
	//	func TestConformance(t *testing.T) {
	//		serializertest.Run(t, jsonserializer.New())
	//	}
	_ = func(t *testing.T) { serializertest.Run(t, jsonserializer.New()) }
}

func ExampleRunWith() {
	// A serializer of protocol buffer messages runs the suite with messages
	// (in its conformance_test.go):
	samples := serializertest.Samples{
		Values: []serializertest.Sample{
			{Name: "string", Value: wrapperspb.String("h\u00e9llo")},
			{Name: "empty string", Value: wrapperspb.String("")},
			{Name: "timestamp", Value: timestamppb.New(time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC))},
		},
		// A typical value, with a long run of 'x' for TruncatedInput to
		// cut inside.
		Record:       wrapperspb.String(strings.Repeat("x", 200)),
		EmptyIsValid: true, // zero bytes are the empty message
		Equal:        func(got, want any) bool { return proto.Equal(got.(proto.Message), want.(proto.Message)) },
	}
	_ = func(t *testing.T) { serializertest.RunWith(t, protoserializer.New(), samples) }
}
