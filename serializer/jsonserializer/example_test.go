package jsonserializer_test

import (
	"fmt"

	"github.com/stratacache/strata/serializer/jsonserializer"
)

type user struct {
	ID   int
	Name string
}

func ExampleNew() {
	s := jsonserializer.New()
	b, err := s.Marshal(user{ID: 42, Name: "Ada"})
	fmt.Println(string(b), err)

	var u user
	err = s.Unmarshal(b, &u)
	fmt.Printf("%+v %v\n", u, err)

	_, err = s.Marshal(make(chan int))
	fmt.Println(err)
	// Output:
	// {"ID":42,"Name":"Ada"} <nil>
	// {ID:42 Name:Ada} <nil>
	// jsonserializer: marshal chan int: json: unsupported type: chan int
}
