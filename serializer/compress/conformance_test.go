package compress_test

import (
	"testing"

	"github.com/stratacache/strata/serializer"
	"github.com/stratacache/strata/serializer/compress"
	"github.com/stratacache/strata/serializer/jsonserializer"
	"github.com/stratacache/strata/serializer/msgpackserializer"
	"github.com/stratacache/strata/serializer/serializertest"
)

func mustNew(t testing.TB, inner serializer.Serializer, opts *compress.Options) *compress.Serializer {
	t.Helper()
	s, err := compress.New(inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the suite with the default threshold (small values
// plain, the suite's 1 MiB values compressed) and with everything
// compressed, for both algorithms and two inner serializers.
func TestConformance(t *testing.T) {
	for _, inner := range []struct {
		name string
		s    serializer.Serializer
	}{{"json", jsonserializer.New()}, {"msgpack", msgpackserializer.New()}} {
		for _, alg := range []compress.Algorithm{compress.Zstd, compress.S2} {
			for _, min := range []int{0, 1} {
				name := inner.name + "/" + alg.String() + "/default-threshold"
				if min == 1 {
					name = inner.name + "/" + alg.String() + "/compress-all"
				}
				t.Run(name, func(t *testing.T) {
					serializertest.Run(t, mustNew(t, inner.s, &compress.Options{Algorithm: alg, MinSize: min}))
				})
			}
		}
	}
}
