package protoserializer

import (
	"errors"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"

	"github.com/stratacache/strata/serializer"
)

// ErrNotMessage is wrapped by the errors of Marshal for a value that is not
// a proto.Message and of Unmarshal for a target that is neither a message
// nor a pointer to a message pointer.
var ErrNotMessage = errors.New("not a protocol buffer message")

// Serializer is a serializer.Serializer for proto.Message values. It has no
// configuration; it is safe for concurrent use.
type Serializer struct{}

var _ serializer.Serializer = (*Serializer)(nil)

// New returns a protocol buffer Serializer.
func New() *Serializer {
	return &Serializer{}
}

var messageType = reflect.TypeFor[proto.Message]()

// Marshal returns the wire encoding of the message v, in a new slice. A v
// that is not a proto.Message, a nil message (protocol buffers have no nil
// message: it would come back as an empty one), or a message proto.Marshal
// refuses (a string field holding invalid UTF-8, a required field missing)
// is an error naming v's type.
func (*Serializer) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("protoserializer: marshal %T: %w (protoserializer encodes generated message types; use msgpackserializer or jsonserializer for other values)", v, ErrNotMessage)
	}
	if !m.ProtoReflect().IsValid() {
		return nil, fmt.Errorf("protoserializer: marshal %T: a nil message cannot round-trip (it would decode as an empty message)", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protoserializer: marshal %T: %w", v, err)
	}
	if b == nil {
		b = []byte{} // an empty message: not nil, so that callers can tell it from no value
	}
	return b, nil
}

// Unmarshal decodes data into v, which is either a message (a *pb.User,
// reset first) or a pointer to a message pointer (a **pb.User, or a
// *proto.Message or *any holding a message), which gets a newly allocated
// message of that type.
// Corrupt or truncated data and any other target are errors; it never
// panics and keeps no reference to data.
func (*Serializer) Unmarshal(data []byte, v any) error {
	if m, ok := v.(proto.Message); ok {
		if !m.ProtoReflect().IsValid() {
			return fmt.Errorf("protoserializer: unmarshal into %T: the target is a nil message", v)
		}
		return decode(data, m, v)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("protoserializer: unmarshal into %T: the target must be a message or a non-nil pointer to a message pointer", v)
	}
	target := rv.Elem()
	var m proto.Message
	switch t := target.Type(); {
	case t.Kind() == reflect.Pointer && t.Implements(messageType):
		// **pb.User: what core passes for a GetOrSet[*pb.User]. A nil
		// *pb.User still knows its message type.
		m = reflect.Zero(t).Interface().(proto.Message).ProtoReflect().Type().New().Interface()
	case t.Kind() == reflect.Interface && !target.IsNil() && target.Elem().Type().Implements(messageType):
		// *proto.Message (or *any) holding a message: decode into a new
		// one of its type, never into the one it holds (others may share
		// it).
		m = target.Interface().(proto.Message).ProtoReflect().Type().New().Interface()
	default:
		return fmt.Errorf("protoserializer: unmarshal into %T: %w (nor a pointer to a message pointer)", v, ErrNotMessage)
	}
	if err := decode(data, m, v); err != nil {
		return err
	}
	target.Set(reflect.ValueOf(m))
	return nil
}

func decode(data []byte, m proto.Message, target any) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("protoserializer: unmarshal into %T: %w", target, err)
	}
	return nil
}
