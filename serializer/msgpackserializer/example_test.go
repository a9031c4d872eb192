package msgpackserializer_test

import (
	"fmt"

	"github.com/stratacache/strata/serializer/msgpackserializer"
)

type user struct {
	ID   int
	Name string
}

func ExampleNew() {
	s := msgpackserializer.New()
	b, err := s.Marshal(user{ID: 42, Name: "Ada"})
	fmt.Printf("%d bytes, %v\n", len(b), err)

	var u user
	err = s.Unmarshal(b, &u)
	fmt.Printf("%+v %v\n", u, err)

	_, err = s.Marshal(struct{ OnChange func() }{})
	fmt.Println(err)
	// Output:
	// 14 bytes, <nil>
	// {ID:42 Name:Ada} <nil>
	// msgpackserializer: marshal struct { OnChange func() }: unsupported type func() at .OnChange: MessagePack cannot encode it
}
