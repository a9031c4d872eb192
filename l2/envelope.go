package l2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// EnvelopeVersion is the format version written as the first byte of every
// encoded Envelope. DecodeEnvelope rejects any other version.
const EnvelopeVersion = 1

// FlagFailSafe marks an entry that fail-safe may serve after its logical
// expiry. It is bit 0 of Envelope.Flags; the other bits are reserved.
const FlagFailSafe uint8 = 1 << 0

// FlagTombstone marks the record of a Remove or Expire: not a value (Value
// is empty), but the version a later conditional write must beat, so that a
// slower node cannot bring back a value older than the removal.
const FlagTombstone uint8 = 1 << 1

// knownFlags are the flag bits this version defines. Any other bit set is an
// error on encode and on decode.
const knownFlags = FlagFailSafe | FlagTombstone

// Limits of the version 1 format. AppendBinary refuses an Envelope beyond
// them, and no valid encoding can exceed them.
const (
	// MaxTags is the most tags one Envelope may carry.
	MaxTags = math.MaxUint16
	// MaxTagLen is the longest tag, in bytes.
	MaxTagLen = math.MaxUint16
	// MaxETagLen is the longest ETag, in bytes.
	MaxETagLen = math.MaxUint16
	// MaxValueLen is the longest Value, in bytes.
	MaxValueLen = math.MaxUint32
)

// ErrInvalidEnvelope is wrapped by every error AppendBinary returns: the
// Envelope cannot be encoded (unknown flags, a field beyond the format's
// limits).
var ErrInvalidEnvelope = errors.New("l2: invalid envelope")

// Envelope is one cache entry as core stores it in L2: the serialized value
// and the metadata every node needs to serve it (times, fail-safe, tags,
// conditional-refresh validators). Times are Unix nanoseconds.
//
// The byte layout is described in docs/wire-format.md; it is little-endian
// and independent of Go, so other languages can read and write entries.
type Envelope struct {
	// Flags holds FlagFailSafe and FlagTombstone; the other bits are
	// reserved and must be 0.
	Flags uint8
	// Created is when the value was produced. It is also the entry's version
	// for ConditionalStore.SetIfNewer.
	Created int64
	// Expires is the logical expiry: after it the entry is stale, usable only
	// by fail-safe.
	Expires int64
	// EagerRefresh is when a hit should start a background refresh; 0 means
	// never.
	EagerRefresh int64
	// Tags are the entry's tags, in order. Nil and empty encode the same and
	// decode as nil.
	Tags []string
	// ETag is the source's entity tag for conditional refresh; "" means none.
	ETag string
	// LastModified is the source's last-modified time; 0 means none.
	LastModified int64
	// Value is the serializer's bytes.
	Value []byte
}

// Sizes of the fixed-width parts of the version 1 layout.
const (
	sizeVersion = 1
	sizeFlags   = 1
	sizeTime    = 8 // int64 Unix nanoseconds
	sizeCount   = 2 // uint16 tag count
	sizeStrLen  = 2 // uint16 length of a tag or the ETag
	sizeValLen  = 4 // uint32 length of the value
)

// encodedLen returns the exact length of e's encoding. It assumes e is
// within the format's limits.
func (e *Envelope) encodedLen() int {
	n := sizeVersion + sizeFlags + 3*sizeTime + sizeCount
	for _, t := range e.Tags {
		n += sizeStrLen + len(t)
	}
	n += sizeStrLen + len(e.ETag) + sizeTime + sizeValLen + len(e.Value)
	return n
}

// validate reports why e cannot be encoded, or nil.
func (e *Envelope) validate() error {
	if e.Flags&^knownFlags != 0 {
		return fmt.Errorf("%w: unknown flags 0x%02x (known: 0x%02x)", ErrInvalidEnvelope, e.Flags&^knownFlags, knownFlags)
	}
	if len(e.Tags) > MaxTags {
		return fmt.Errorf("%w: %d tags (max %d)", ErrInvalidEnvelope, len(e.Tags), MaxTags)
	}
	for i, t := range e.Tags {
		if len(t) > MaxTagLen {
			return fmt.Errorf("%w: tag %d is %d bytes (max %d)", ErrInvalidEnvelope, i, len(t), MaxTagLen)
		}
	}
	if len(e.ETag) > MaxETagLen {
		return fmt.Errorf("%w: ETag is %d bytes (max %d)", ErrInvalidEnvelope, len(e.ETag), MaxETagLen)
	}
	if uint64(len(e.Value)) > MaxValueLen {
		return fmt.Errorf("%w: value is %d bytes (max %d)", ErrInvalidEnvelope, len(e.Value), uint64(MaxValueLen))
	}
	return nil
}

// AppendBinary appends the version 1 encoding of e to dst and returns the
// extended slice (it implements encoding.BinaryAppender). It returns dst
// unchanged and an error wrapping ErrInvalidEnvelope when e has unknown flags
// or a field beyond MaxTags, MaxTagLen, MaxETagLen or MaxValueLen. It does
// not modify e and is safe for concurrent use on the same Envelope.
func (e *Envelope) AppendBinary(dst []byte) ([]byte, error) {
	if err := e.validate(); err != nil {
		return dst, err
	}
	le := binary.LittleEndian
	b := dst
	if need := e.encodedLen(); cap(b)-len(b) < need {
		b = append(make([]byte, 0, len(b)+need), b...)
	}
	b = append(b, EnvelopeVersion, e.Flags)
	b = le.AppendUint64(b, uint64(e.Created))
	b = le.AppendUint64(b, uint64(e.Expires))
	b = le.AppendUint64(b, uint64(e.EagerRefresh))
	b = le.AppendUint16(b, uint16(len(e.Tags)))
	for _, t := range e.Tags {
		b = le.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
	}
	b = le.AppendUint16(b, uint16(len(e.ETag)))
	b = append(b, e.ETag...)
	b = le.AppendUint64(b, uint64(e.LastModified))
	b = le.AppendUint32(b, uint32(len(e.Value)))
	b = append(b, e.Value...)
	return b, nil
}

// MarshalBinary returns the version 1 encoding of e in a new slice (it
// implements encoding.BinaryMarshaler). Errors are those of AppendBinary.
func (e *Envelope) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(nil)
}

// DecodeEnvelope decodes a version 1 envelope. The input must be exactly one
// envelope: garbage, truncated input, trailing bytes, another version or
// unknown flags give an error wrapping ErrCorrupt that says what was wrong
// and at which byte offset. It never panics, and it allocates no more than
// the input's length justifies.
//
// The returned Value aliases data (its capacity is capped, so appending to it
// never writes into data): the caller must not modify data while it uses
// Value, or must copy Value first. Tags and ETag are copies. A zero-length
// value decodes as an empty, non-nil slice when data is non-nil.
func DecodeEnvelope(data []byte) (Envelope, error) {
	d := decoder{data: data}
	var e Envelope
	version := d.u8("version")
	if d.err == nil && version != EnvelopeVersion {
		return Envelope{}, fmt.Errorf("%w: unsupported version %d at offset 0 (want %d)", ErrCorrupt, version, EnvelopeVersion)
	}
	flagsAt := d.off
	e.Flags = d.u8("flags")
	if d.err == nil && e.Flags&^knownFlags != 0 {
		return Envelope{}, fmt.Errorf("%w: unknown flags 0x%02x at offset %d (known: 0x%02x)", ErrCorrupt, e.Flags&^knownFlags, flagsAt, knownFlags)
	}
	e.Created = d.i64("created")
	e.Expires = d.i64("expires")
	e.EagerRefresh = d.i64("eager refresh")
	countAt := d.off
	count := int(d.u16("tag count"))
	if d.err == nil && count > 0 {
		// Each tag takes at least its 2-byte length: refuse a count the
		// remaining bytes cannot hold before allocating for it.
		if count > d.remaining()/sizeStrLen {
			return Envelope{}, fmt.Errorf("%w: tag count %d at offset %d exceeds the %d bytes left", ErrCorrupt, count, countAt, d.remaining())
		}
		e.Tags = make([]string, count)
		for i := range e.Tags {
			e.Tags[i] = string(d.take(int(d.u16("tag length")), "tag"))
		}
	}
	e.ETag = string(d.take(int(d.u16("ETag length")), "ETag"))
	e.LastModified = d.i64("last modified")
	e.Value = d.take(int(d.u32("value length")), "value")
	if d.err != nil {
		return Envelope{}, d.err
	}
	if d.remaining() != 0 {
		return Envelope{}, fmt.Errorf("%w: %d trailing bytes at offset %d", ErrCorrupt, d.remaining(), d.off)
	}
	return e, nil
}

// decoder reads the fixed-width fields of an envelope, bounds-checking each
// read. After the first failure every read returns zero and err keeps the
// first error.
type decoder struct {
	data []byte
	off  int
	err  error
}

func (d *decoder) remaining() int { return len(d.data) - d.off }

// take returns the next n bytes as a subslice of the input with its capacity
// capped (never a copy), or nil after recording a truncation error.
func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.err = fmt.Errorf("%w: truncated %s at offset %d (need %d bytes, have %d)", ErrCorrupt, what, d.off, n, d.remaining())
		return nil
	}
	b := d.data[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) u8(what string) uint8 {
	if b := d.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if b := d.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if b := d.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) i64(what string) int64 {
	if b := d.take(8, what); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}
