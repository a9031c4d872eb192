package msgpackserializer

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errEmpty is reported for empty data: no MessagePack value is zero bytes
// long.
var errEmpty = errors.New("empty data")

// scan checks that data holds exactly one well-formed MessagePack value,
// with arrays and maps nested at most MaxDepth deep, without decoding it. It
// runs in a loop, not by recursion, so no input can exhaust the stack; and
// it rejects a length that exceeds the data left, so the decoder never
// allocates for data that is not there.
func scan(data []byte) error {
	if len(data) == 0 {
		return errEmpty
	}
	var stackBuf [32]uint64
	// pending[i] is how many values are still to read at depth i.
	pending := append(stackBuf[:0], 1)
	i := 0
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if i >= len(data) {
			return fmt.Errorf("truncated data: a value is missing at offset %d", i)
		}
		at := i
		c := data[i]
		i++
		var skip, items uint64 // bytes to skip; values the container holds
		var lenSize int        // size of a length field that follows c
		container, isMap := false, false
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3: // fixint, nil, bool
		case c <= 0x8f: // fixmap
			container, isMap, items = true, true, uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			container, items = true, uint64(c&0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc1:
			return fmt.Errorf("invalid code 0xc1 at offset %d", at)
		case c == 0xc4, c == 0xd9: // bin8, str8
			lenSize = 1
		case c == 0xc5, c == 0xda: // bin16, str16
			lenSize = 2
		case c == 0xc6, c == 0xdb: // bin32, str32
			lenSize = 4
		case c == 0xc7: // ext8: length, type
			lenSize, skip = 1, 1
		case c == 0xc8:
			lenSize, skip = 2, 1
		case c == 0xc9:
			lenSize, skip = 4, 1
		case c == 0xca, c == 0xce, c == 0xd2: // float32, uint32, int32
			skip = 4
		case c == 0xcb, c == 0xcf, c == 0xd3: // float64, uint64, int64
			skip = 8
		case c == 0xcc, c == 0xd0:
			skip = 1
		case c == 0xcd, c == 0xd1:
			skip = 2
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16: type, data
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc: // array16
			container, lenSize = true, 2
		case c == 0xdd:
			container, lenSize = true, 4
		case c == 0xde: // map16
			container, isMap, lenSize = true, true, 2
		case c == 0xdf:
			container, isMap, lenSize = true, true, 4
		}
		if lenSize > 0 {
			if len(data)-i < lenSize {
				return fmt.Errorf("truncated data: the length at offset %d is cut", i)
			}
			var n uint64
			switch lenSize {
			case 1:
				n = uint64(data[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(data[i:]))
			case 4:
				n = uint64(binary.BigEndian.Uint32(data[i:]))
			}
			i += lenSize
			if container {
				items = n
			} else {
				skip += n
			}
		}
		if container {
			if isMap {
				items *= 2
			}
			if items > uint64(len(data)-i) { // every value takes a byte at least
				return fmt.Errorf("truncated data: the container at offset %d holds %d values, more than the %d bytes left", at, items, len(data)-i)
			}
			if items > 0 {
				if len(pending) > MaxDepth {
					return fmt.Errorf("arrays and maps nested deeper than %d levels at offset %d", MaxDepth, at)
				}
				pending = append(pending, items)
			}
			continue
		}
		if skip > uint64(len(data)-i) {
			return fmt.Errorf("truncated data: the value at offset %d needs %d bytes, %d are left", at, skip, len(data)-i)
		}
		i += int(skip)
	}
	if i != len(data) {
		return fmt.Errorf("%d bytes of trailing data after the value at offset %d", len(data)-i, i)
	}
	return nil
}
