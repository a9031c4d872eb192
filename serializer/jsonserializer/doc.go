// Package jsonserializer is a serializer.Serializer built on encoding/json:
// readable L2 entries that other languages can decode, at the cost of size
// and speed next to a binary format.
//
// It behaves like encoding/json, with two differences: HTML characters are
// not escaped (the bytes go to a cache, not a web page), and a value whose
// type JSON cannot represent (a channel, a func, a complex number) or a
// float that is NaN or infinite is an error at Marshal naming the type,
// never silently dropped.
//
// Know JSON's limits when you choose it: only exported struct fields are
// kept; a value decoded into an interface (any) gets JSON's types
// (float64 for every number, map[string]any for every object), so decode
// into the concrete type you cached; and invalid UTF-8 in a string is
// replaced by U+FFFD (use []byte for binary data).
package jsonserializer
