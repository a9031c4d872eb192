package redisl2

// The Redis value of an entry is a header of headerLen lower-case hex digits
// holding its version, then the value's bytes. The header is the version's
// two's-complement bits with the sign bit flipped, so that the unsigned
// order of headers — and their lexicographic order as text — is the signed
// order of versions: math.MinInt64 (a plain Set) is "0000000000000000",
// 0 is "8000000000000000", and today's Unix nanoseconds are about
// "97ad...". The SetIfNewer script compares headers as two 32-bit halves,
// which Lua numbers (doubles) hold exactly.
//
// A value without a valid header was written by something else: Get returns
// it whole, and SetIfNewer replaces it. A foreign value that happens to
// start with 16 lower-case hex digits cannot be told from an entry: it is
// read as one (its first 16 bytes taken as a header), and SetIfNewer
// compares versions with it.
const headerLen = 16

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

// entryValue returns the value of the Redis value raw: what follows its
// header, or raw whole when it has no valid header (a value this package
// did not write: l2.Store says to return it as stored). The result shares
// raw's memory.
func entryValue(raw []byte) []byte {
	if _, ok := entryVersion(raw); !ok {
		return raw
	}
	return raw[headerLen:]
}

// entryVersion returns the version in raw's header, and whether raw starts
// with a header (16 lower-case hex digits).
func entryVersion(raw []byte) (int64, bool) {
	if len(raw) < headerLen {
		return 0, false
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
			return 0, false
		}
		u = u<<4 | uint64(d)
	}
	return int64(u ^ (1 << 63)), true
}
