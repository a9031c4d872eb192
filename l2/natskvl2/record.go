package natskvl2

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
)

// The stored bytes of an entry (the record) are a small header followed by
// the value, or by a manifest when the value was too large for one message.
// Little-endian:
//
//	0      format   recordFormat (1)
//	1      flags    flagChunked, flagFullKey
//	2..9   expires  int64 Unix nanoseconds: after it the entry is missing
//	10..17 version  int64 (SetIfNewer's version; math.MinInt64 for Set)
//	[flagFullKey] uint32 key length, key bytes (keys stored under a hash)
//	[flagChunked] uint64 chunk id, uint32 chunk count, uint64 value length
//	[otherwise]   the value, to the end
const (
	recordFormat = 1
	flagChunked  = 1 << 0
	flagFullKey  = 1 << 1
	headerLen    = 1 + 1 + 8 + 8
	manifestLen  = 8 + 4 + 8
)

// errCorrupt is a KV value that is not a record: written by something else
// (or a truncated record). Get returns such a value as stored.
var errCorrupt = errors.New("natskvl2: corrupt record")

// maxDirectKey is the longest key token that holds the key itself; longer
// keys are stored under a hash of the key.
const maxDirectKey = 480

// keyToken returns the NATS KV key under which key is stored, and whether it
// is a hash. KV keys allow only [-/_=.a-zA-Z0-9], so the key is written in
// unpadded base64url after a "k" (reversible, and the empty key is "k"); a
// key whose encoding would exceed maxDirectKey bytes is "h" followed by the
// base64url SHA-256 of the key, and its record holds the full key so a
// reader can check it. The token never contains '.', so the chunk keys
// token.ID.N never collide with another entry's token.
func keyToken(key string) (token string, hashed bool) {
	enc := base64.RawURLEncoding
	if enc.EncodedLen(len(key)) <= maxDirectKey {
		b := make([]byte, 1+enc.EncodedLen(len(key)))
		b[0] = 'k'
		enc.Encode(b[1:], []byte(key))
		return string(b), false
	}
	sum := sha256.Sum256([]byte(key))
	return "h" + enc.EncodeToString(sum[:]), true
}

// chunkKey is the KV key of chunk n of the value with the given id.
func chunkKey(token string, id uint64, n int) string {
	return token + "." + strconv.FormatUint(id, 36) + "." + strconv.Itoa(n)
}

// record is a decoded record.
type record struct {
	expires int64
	version int64
	key     string // the full key, when stored under a hash
	fullKey bool
	chunked bool
	value   []byte // inline value (aliasing the stored bytes)
	id      uint64 // chunked: the chunks' id
	count   int    // chunked: the number of chunks
	total   uint64 // chunked: the value's length
}

// appendRecord appends the encoding of r to dst.
func appendRecord(dst []byte, r *record) []byte {
	var flags byte
	if r.chunked {
		flags |= flagChunked
	}
	if r.fullKey {
		flags |= flagFullKey
	}
	le := binary.LittleEndian
	dst = append(dst, recordFormat, flags)
	dst = le.AppendUint64(dst, uint64(r.expires))
	dst = le.AppendUint64(dst, uint64(r.version))
	if r.fullKey {
		dst = le.AppendUint32(dst, uint32(len(r.key)))
		dst = append(dst, r.key...)
	}
	if r.chunked {
		dst = le.AppendUint64(dst, r.id)
		dst = le.AppendUint32(dst, uint32(r.count))
		dst = le.AppendUint64(dst, r.total)
		return dst
	}
	return append(dst, r.value...)
}

// decodeRecord decodes b; the returned value aliases b.
func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < headerLen || b[0] != recordFormat || b[1]&^(flagChunked|flagFullKey) != 0 {
		return r, errCorrupt
	}
	le := binary.LittleEndian
	flags := b[1]
	r.expires = int64(le.Uint64(b[2:]))
	r.version = int64(le.Uint64(b[10:]))
	b = b[headerLen:]
	if flags&flagFullKey != 0 {
		if len(b) < 4 || uint64(len(b)-4) < uint64(le.Uint32(b)) {
			return r, errCorrupt
		}
		n := int(le.Uint32(b))
		r.fullKey, r.key = true, string(b[4:4+n])
		b = b[4+n:]
	}
	if flags&flagChunked != 0 {
		if len(b) != manifestLen {
			return r, errCorrupt
		}
		r.chunked = true
		r.id = le.Uint64(b)
		r.count = int(le.Uint32(b[8:]))
		r.total = le.Uint64(b[12:])
		return r, nil
	}
	r.value = b[:len(b):len(b)]
	return r, nil
}
