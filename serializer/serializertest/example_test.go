package serializertest_test

import (
	"testing"

	"github.com/stratacache/strata/serializer/jsonserializer"
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
