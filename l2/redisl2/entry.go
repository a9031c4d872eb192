package redisl2

import (
	"errors"
	"fmt"
)

// The Redis value of an entry is a header of headerLen lower-case hex digits
// holding its version, then the value's bytes. The header is the version's
// two's-complement bits with the sign bit flipped, so that the unsigned
// order of headers — and their lexicographic order as text — is the signed
// order of versions: math.MinInt64 (a plain Set) is "0000000000000000",
// 0 is "8000000000000000", and today's Unix nanoseconds are about
// "97ad...". The SetIfNewer script compares headers as two 32-bit halves,
// which Lua numbers (doubles) hold exactly.
const headerLen = 16

// ErrNotEntry is wrapped by the error Get and GetMany return when the Redis
// value under a key was not written by this package (it is shorter than the
// version header, or its header is not hex).
var ErrNotEntry = errors.New("redisl2: value is not a redisl2 entry")

const hexDigits = "0123456789abcdef"

// appendEntry appends the Redis value of an entry to dst: the version
// header, then value.
func appendEntry(dst []byte, version int64, value []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, headerLen+len(value))
	}
	u := uint64(version) ^ (1 << 63)
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(u>>shift)&0xf])
	}
	return append(dst, value...)
}

// parseEntry returns the value of the Redis value raw, after checking its
// header. The result shares raw's memory.
func parseEntry(raw []byte) ([]byte, error) {
	if _, err := entryVersion(raw); err != nil {
		return nil, err
	}
	return raw[headerLen:], nil
}

// entryVersion returns the version in raw's header.
func entryVersion(raw []byte) (int64, error) {
	if len(raw) < headerLen {
		return 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte version header", ErrNotEntry, len(raw), headerLen)
	}
	var u uint64
	for _, c := range raw[:headerLen] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, fmt.Errorf("%w: version header %q is not lower-case hex", ErrNotEntry, raw[:headerLen])
		}
		u = u<<4 | uint64(d)
	}
	return int64(u ^ (1 << 63)), nil
}
