package protoserializer_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stratacache/strata/serializer/protoserializer"
	"github.com/stratacache/strata/serializer/protoserializer/internal/testpb"
	"github.com/stratacache/strata/serializer/serializertest"
)

// samples are the messages the shared suite runs with: protoserializer
// encodes nothing else.
func samples() serializertest.Samples {
	big := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
	list, _ := structpb.NewList([]any{1.5, "x", true, nil, map[string]any{"k": "v"}})
	long := sampleRecord()
	long.Name = strings.Repeat("x", 200)
	return serializertest.Samples{
		Values: []serializertest.Sample{
			{Name: "record", Value: sampleRecord()},
			{Name: "empty record", Value: &testpb.Record{}},
			{Name: "oneof number", Value: &testpb.Record{Choice: &testpb.Record_Number{Number: math.MinInt64}}},
			{Name: "1 MiB bytes", Value: &testpb.Record{Raw: big, Name: strings.Repeat("0123456789abcdef", 1<<16)}},
			{Name: "string wrapper", Value: wrapperspb.String("h\u00e9llo")},
			{Name: "empty string wrapper", Value: wrapperspb.String("")},
			{Name: "int64 wrapper", Value: wrapperspb.Int64(math.MaxInt64)},
			{Name: "double wrapper", Value: wrapperspb.Double(math.SmallestNonzeroFloat64)},
			{Name: "timestamp", Value: timestamppb.New(time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC))},
			{Name: "struct", Value: &structpb.Struct{Fields: map[string]*structpb.Value{"list": structpb.NewListValue(list)}}},
			{Name: "item list", Value: &testpb.ItemList{Items: []*testpb.Item{{Id: 1, Tags: []string{"a"}}, {}, {Description: "third"}}}},
		},
		Record:       long,
		EmptyIsValid: true, // zero bytes are the empty message
		// Mismatched stays nil: another message's fields decode as unknown
		// ones.
		Equal: func(got, want any) bool { return proto.Equal(got.(proto.Message), want.(proto.Message)) },
	}
}

func TestConformance(t *testing.T) {
	serializertest.RunWith(t, protoserializer.New(), samples())
}
