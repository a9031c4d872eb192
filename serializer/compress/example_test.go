package compress_test

import (
	"fmt"
	"strings"

	"github.com/stratacache/strata/serializer/compress"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

func ExampleNew() {
	s, err := compress.New(jsonserializer.New(), &compress.Options{Algorithm: compress.Zstd, MinSize: 1024})
	if err != nil {
		panic(err)
	}
	small, _ := s.Marshal("hello")
	fmt.Printf("small: format byte %d, %d bytes\n", small[0], len(small))

	text := strings.Repeat("all work and no play makes Jack a dull boy. ", 100)
	large, _ := s.Marshal(text)
	fmt.Printf("large: format byte %d, %d bytes for %d characters\n", large[0], len(large), len(text))

	var back string
	err = s.Unmarshal(large, &back)
	fmt.Println(back == text, err)
	// Output:
	// small: format byte 0, 8 bytes
	// large: format byte 1, 69 bytes for 4400 characters
	// true <nil>
}
