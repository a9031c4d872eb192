package protoserializer_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stratacache/strata/serializer"
	"github.com/stratacache/strata/serializer/compress"
	"github.com/stratacache/strata/serializer/jsonserializer"
	"github.com/stratacache/strata/serializer/msgpackserializer"
	"github.com/stratacache/strata/serializer/protoserializer"
	"github.com/stratacache/strata/serializer/protoserializer/internal/testpb"
)

// The serializer benchmarks behind docs/serializers.md: every serializer,
// and the compression wrapper around some, on the same three values in one
// run. The Go struct and the protocol buffer message hold the same data.

type benchItem struct {
	ID          int64
	Name        string
	Score       float64
	Active      bool
	Tags        []string
	Created     time.Time
	Attrs       map[string]string
	Description string
}

var words = strings.Fields(`the cache serves values from memory and falls back to a shared store
when a node restarts while the backplane tells every other node that an entry changed so
that stale copies are dropped fail safe keeps the last value when the source is down`)

// text returns about n bytes of words, the same every run.
func text(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

func makeItem(rng *rand.Rand, id int, tags, attrs, desc int) benchItem {
	it := benchItem{
		ID: int64(id), Name: fmt.Sprintf("user %d", id), Score: rng.Float64() * 100, Active: id%2 == 0,
		Created:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Minute),
		Attrs:       map[string]string{},
		Description: text(rng, desc),
	}
	for i := range tags {
		it.Tags = append(it.Tags, fmt.Sprintf("tag-%d", i))
	}
	for i := range attrs {
		it.Attrs[fmt.Sprintf("attr-%d", i)] = text(rng, 12)
	}
	return it
}

func toProto(it benchItem) *testpb.Item {
	return &testpb.Item{
		Id: it.ID, Name: it.Name, Score: it.Score, Active: it.Active, Tags: it.Tags,
		Created: timestamppb.New(it.Created), Attrs: it.Attrs, Description: it.Description,
	}
}

type benchValue struct {
	name  string
	goVal any
	pbVal any
	// newGo and newPB return a pointer to a zero value to decode into,
	// as core does (var v T; Unmarshal(b, &v)).
	newGo func() any
	newPB func() any
}

func benchValues() []benchValue {
	rng := rand.New(rand.NewPCG(1, 2))
	small := makeItem(rng, 1, 3, 2, 40)
	large := makeItem(rng, 2, 50, 20, 8000)
	list := make([]benchItem, 1000)
	pbList := &testpb.ItemList{}
	for i := range list {
		list[i] = makeItem(rng, i, 3, 2, 40)
		pbList.Items = append(pbList.Items, toProto(list[i]))
	}
	return []benchValue{
		{"small", small, toProto(small), func() any { return new(benchItem) }, func() any { return new(*testpb.Item) }},
		{"10KiB", large, toProto(large), func() any { return new(benchItem) }, func() any { return new(*testpb.Item) }},
		{"list-1000", list, pbList, func() any { return new([]benchItem) }, func() any { return new(*testpb.ItemList) }},
	}
}

func mustCompress(b *testing.B, inner serializer.Serializer, alg compress.Algorithm) serializer.Serializer {
	s, err := compress.New(inner, &compress.Options{Algorithm: alg})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkSerializers(b *testing.B) {
	serializers := []struct {
		name  string
		s     serializer.Serializer
		proto bool
	}{
		{"json", jsonserializer.New(), false},
		{"msgpack", msgpackserializer.New(), false},
		{"proto", protoserializer.New(), true},
		{"json+zstd", mustCompress(b, jsonserializer.New(), compress.Zstd), false},
		{"json+s2", mustCompress(b, jsonserializer.New(), compress.S2), false},
		{"msgpack+s2", mustCompress(b, msgpackserializer.New(), compress.S2), false},
	}
	for _, v := range benchValues() {
		for _, sz := range serializers {
			val, newVal := v.goVal, v.newGo
			if sz.proto {
				val, newVal = v.pbVal, v.newPB
			}
			data, err := sz.s.Marshal(val)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(v.name+"/"+sz.name+"/marshal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := sz.s.Marshal(val); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(data)), "enc-bytes")
			})
			b.Run(v.name+"/"+sz.name+"/unmarshal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := sz.s.Unmarshal(data, newVal()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(data)), "enc-bytes")
			})
		}
	}
}

// TestBenchValuesRoundTrip checks the benchmark values survive every
// serializer, so the benchmark measures working code.
func TestBenchValuesRoundTrip(t *testing.T) {
	for _, v := range benchValues() {
		for _, s := range []serializer.Serializer{jsonserializer.New(), msgpackserializer.New()} {
			data, err := s.Marshal(v.goVal)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Unmarshal(data, v.newGo()); err != nil {
				t.Fatalf("%s with %T: %v", v.name, s, err)
			}
		}
		data, err := protoserializer.New().Marshal(v.pbVal)
		if err != nil {
			t.Fatal(err)
		}
		if err := protoserializer.New().Unmarshal(data, v.newPB()); err != nil {
			t.Fatal(err)
		}
	}
}
