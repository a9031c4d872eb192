// Package serializer defines how strata turns cached values into bytes for the
// distributed (L2) cache.
//
// Adapters live in sub-packages (jsonserializer, ...). Every adapter must pass
// the conformance suite in serializertest.
package serializer

// Serializer turns values into bytes and back. Implementations must be safe for
// concurrent use by multiple goroutines.
type Serializer interface {
	// Marshal encodes v. A value whose type cannot round-trip (a channel, a
	// func, ...) is an error, never a silently corrupt result.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to. Corrupt or truncated
	// data is an error, never a panic. Unmarshal must not retain data.
	Unmarshal(data []byte, v any) error
}
