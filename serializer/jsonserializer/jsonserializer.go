package jsonserializer

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/stratacache/strata/serializer"
)

// Serializer is a serializer.Serializer using encoding/json. It has no
// state; it is safe for concurrent use.
type Serializer struct{}

var _ serializer.Serializer = (*Serializer)(nil)

// New returns a JSON Serializer.
func New() *Serializer {
	return &Serializer{}
}

// Marshal returns the JSON encoding of v, in a new slice. A value JSON
// cannot represent (a channel, a func, a complex number anywhere in v, a NaN
// or infinite float, a cycle) is an error that names v's type and the
// offending one.
func (*Serializer) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("jsonserializer: marshal %T: %w", v, err)
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // Encode ends with a newline
}

// Unmarshal decodes the JSON in data into the value v points to. Invalid,
// truncated or mistyped JSON, trailing data, or a v that is not a non-nil
// pointer is an error; it never panics and keeps no reference to data.
func (*Serializer) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("jsonserializer: unmarshal into %T: %w", v, err)
	}
	return nil
}
