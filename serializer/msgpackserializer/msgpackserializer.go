package msgpackserializer

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/stratacache/strata/serializer"
)

// MaxDepth is how deeply containers (structs, maps, slices, arrays,
// pointers, interfaces) may nest in a value given to Marshal, and arrays
// and maps in data given to Unmarshal. Past it, Marshal reports a cycle or
// too deep a value and Unmarshal corrupt data.
const MaxDepth = 10_000

// Serializer is a serializer.Serializer using MessagePack. It has no
// configuration; it is safe for concurrent use.
type Serializer struct{}

var _ serializer.Serializer = (*Serializer)(nil)

// New returns a MessagePack Serializer.
func New() *Serializer {
	return &Serializer{}
}

// encoder is a pooled encoder with its buffer.
type encoder struct {
	enc *msgpack.Encoder
	buf bytes.Buffer
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// maxPooledBuffer bounds the buffers kept for reuse, so one huge value does
// not pin its buffer for the life of the process.
const maxPooledBuffer = 1 << 20

// Marshal returns the MessagePack encoding of v, in a new slice. A value
// that cannot round-trip (see the package documentation) is an error that
// names v's type and where in it the offending part is.
func (*Serializer) Marshal(v any) ([]byte, error) {
	if err := check(v); err != nil {
		return nil, fmt.Errorf("msgpackserializer: marshal %T: %w", v, err)
	}
	e := encoders.Get().(*encoder)
	e.buf.Reset()
	e.enc.Reset(&e.buf)
	e.enc.UseCompactInts(true)
	err := e.enc.Encode(v)
	var out []byte
	if err == nil {
		out = bytes.Clone(e.buf.Bytes())
	}
	if e.buf.Cap() <= maxPooledBuffer {
		encoders.Put(e)
	}
	if err != nil {
		return nil, fmt.Errorf("msgpackserializer: marshal %T: %w", v, err)
	}
	return out, nil
}

// Unmarshal decodes the MessagePack value in data into the value v points
// to. Empty, truncated, trailing, too deeply nested or mistyped data, or a v
// that is not a non-nil pointer, is an error; it never panics and keeps no
// reference to data.
func (*Serializer) Unmarshal(data []byte, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("msgpackserializer: unmarshal into %T: the target must be a non-nil pointer", v)
	}
	if err := scan(data); err != nil {
		return fmt.Errorf("msgpackserializer: unmarshal into %T: %w", v, err)
	}
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("msgpackserializer: unmarshal into %T: %w", v, err)
	}
	return nil
}
