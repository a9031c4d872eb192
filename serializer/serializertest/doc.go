// Package serializertest is the conformance suite every serializer.Serializer
// must pass.
//
// An adapter's tests call Run with a serializer:
//
//	func TestConformance(t *testing.T) { serializertest.Run(t, msgpackserializer.New()) }
//
// A serializer that encodes only some types (protoserializer takes only
// protocol buffer messages) calls RunWith with its own sample values
// instead: the same checks, run with Samples the caller gives, except that
// every serializer must refuse the suite's chans and funcs.
//
// The suite checks round trips of structs (with nested structs, slices, maps,
// pointers, times), maps, slices, strings, numbers at their limits, booleans,
// pointers, nil and empty values and a 1 MiB value; that corrupt, truncated,
// mistyped and empty input is an error and never a panic; that a value that
// cannot round-trip (a channel, a func) is an error at Marshal; that Marshal
// hands out fresh bytes and Unmarshal keeps no reference to its input; and
// that a serializer is safe for concurrent use.
//
// Values are compared as a cache user would: exported fields only, a nil
// slice or map equal to an empty one (many formats do not tell them apart),
// and types with an Equal method (time.Time) compared with it.
package serializertest
