package protoserializer_test

import (
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stratacache/strata/serializer/protoserializer"
)

func ExampleNew() {
	s := protoserializer.New()
	b, err := s.Marshal(wrapperspb.String("Ada"))
	fmt.Printf("% x %v\n", b, err)

	// Core decodes a GetOrSet[*wrapperspb.StringValue] like this: into a
	// pointer to a nil message pointer, for which Unmarshal allocates.
	var v *wrapperspb.StringValue
	err = s.Unmarshal(b, &v)
	fmt.Println(v.GetValue(), err)

	_, err = s.Marshal(map[string]string{"name": "Ada"})
	fmt.Println(err)
	// Output:
	// 0a 03 41 64 61 <nil>
	// Ada <nil>
	// protoserializer: marshal map[string]string: not a protocol buffer message (protoserializer encodes generated message types; use msgpackserializer or jsonserializer for other values)
}
