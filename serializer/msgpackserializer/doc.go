// Package msgpackserializer is a serializer.Serializer built on MessagePack
// (github.com/vmihailenco/msgpack/v5): a compact binary format, smaller and
// faster than JSON, that most languages can decode.
//
// Struct fields are encoded by name (the msgpack struct tag renames or, with
// "-", skips a field), so adding or removing a field keeps old entries
// readable. Types with a MarshalMsgpack, EncodeMsgpack, MarshalBinary or
// MarshalText method are encoded with it.
//
// Marshal refuses, with an error naming the type, what would not come back
// from L2 as it went in: channels, funcs, unsafe pointers and complex
// numbers anywhere in the value (even nil ones), fields or elements of an
// interface type with methods (such as error or io.Reader: nothing says
// which concrete type to decode into), and cyclic values or values nested
// deeper than MaxDepth. Unmarshal checks the data's structure before
// decoding: empty, truncated, trailing or too deeply nested data is an
// error, never a panic or a stack overflow.
//
// Know the format's limits: only exported fields are kept; a value decoded
// into an interface (any) gets MessagePack's natural types (int8 ... int64,
// float32 or float64, map[string]any), so decode into the concrete type you
// cached; and a time.Time keeps its instant (to the nanosecond) but comes
// back in the local time zone, so compare times with Equal.
package msgpackserializer
