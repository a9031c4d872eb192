package msgpackserializer_test

import (
	"testing"

	"github.com/stratacache/strata/serializer/msgpackserializer"
	"github.com/stratacache/strata/serializer/serializertest"
)

func TestConformance(t *testing.T) {
	serializertest.Run(t, msgpackserializer.New())
}
