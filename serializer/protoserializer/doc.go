// Package protoserializer is a serializer.Serializer for protocol buffer
// messages (google.golang.org/protobuf): the most compact and fastest of
// strata's serializers for data that already has a .proto schema, and
// entries any language with the schema can decode.
//
// It encodes only proto.Message values: cache a generated message type (a
// *pb.User), and Marshal of anything else — a Go struct, a map, a nil
// message — is an error naming the type. Unmarshal decodes into a message
// (a *pb.User) or, as core does with var v *pb.User; Unmarshal(b, &v), into
// a pointer to a message pointer, for which it allocates a new message.
//
// Protocol buffers trade some checks for schema evolution, and this
// serializer keeps the format's rules: an empty input is a valid, empty
// message; fields the target type does not know are kept as unknown fields,
// not an error (so a reader with an older schema still works); and data
// written for another message type may decode without an error when the
// wire types happen to agree. Cache one message type per key (as core's
// typed API does), and version your schema the protocol buffer way.
package protoserializer
