package backplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// WireVersion is the version of the message format written by AppendBinary
// and the only one DecodeMessage accepts. It is the first byte of every
// message and part of every channel name (see ChannelName), so nodes running
// different versions never read each other's messages. docs/wire-format.md
// describes the format byte by byte.
const WireVersion = 1

// Limits on the fields of a Message, in bytes. AppendBinary refuses a
// message that exceeds one, and DecodeMessage reports one as corrupt.
const (
	// MaxCacheNameLen bounds Message.Cache. It is low enough that the channel
	// name of any cache name, fully escaped, fits the 255 bytes RabbitMQ
	// allows for an exchange name (see ChannelName).
	MaxCacheNameLen = 80
	// MaxSourceLen bounds Message.Source.
	MaxSourceLen = 255
	// MaxTraceParentLen bounds Message.TraceParent. A version 00 W3C
	// traceparent is 55 bytes; later versions may append fields.
	MaxTraceParentLen = 255
	// MaxKeyLen bounds Message.Key (a cache key or a tag).
	MaxKeyLen = 65535
	// MaxValueLen bounds Message.Value (an encoded L2 entry carried by a
	// set message).
	MaxValueLen = 64 << 10
	// MaxMessageLen is the length of the longest valid encoded message.
	MaxMessageLen = headerLen + 1 + MaxCacheNameLen + 1 + MaxSourceLen + 1 + MaxTraceParentLen + 2 + MaxKeyLen + 4 + MaxValueLen
)

// FlagValue marks a message that carries a value (bit 1 of the flags
// byte): a u32 length and Message.Value follow the key. Only a set message
// may carry one. AppendBinary sets it when Value is not nil; Message.Flags
// never holds it.
const FlagValue uint8 = 1 << 1

const (
	// headerLen is the fixed part: version, flags, action, seq, timestamp.
	headerLen = 1 + 1 + 1 + 8 + 8
	// minMessageLen is a message whose strings are as short as allowed.
	minMessageLen = headerLen + 1 + 1 + 1 + 1 + 1 + 2
)

// ErrCorrupt is wrapped by every error DecodeMessage returns: the input is
// not a valid message of WireVersion (garbage, truncated, trailing bytes,
// another version, an unknown action or flag, a field out of its limits).
var ErrCorrupt = errors.New("backplane: corrupt message")

// Action says what changed.
type Action uint8

// The actions. The zero Action is invalid. Values are part of the wire
// format and never change.
const (
	// ActionSet: Key was written; other nodes mark their copy stale.
	ActionSet Action = iota + 1
	// ActionRemove: Key was removed; other nodes delete their copy.
	ActionRemove
	// ActionExpire: Key was expired; other nodes mark their copy stale
	// (still usable by fail-safe).
	ActionExpire
	// ActionRemoveTag: every entry tagged Key was removed.
	ActionRemoveTag
	// ActionExpireTag: every entry tagged Key was expired.
	ActionExpireTag
	// ActionClearRemove: every entry of the cache was removed. Key is empty.
	ActionClearRemove
	// ActionClearExpire: every entry of the cache was expired. Key is empty.
	ActionClearExpire
	// ActionProbe: nothing changed. A node that has published nothing
	// for a while sends one so that it can time its own messages'
	// round trip through the transport (how far behind its subscription
	// is) and so that the others see a gap in its sequence numbers soon.
	// Key is empty; Timestamp is the send time.
	ActionProbe

	maxAction = ActionProbe
)

var actionNames = [...]string{
	ActionSet:         "set",
	ActionRemove:      "remove",
	ActionExpire:      "expire",
	ActionRemoveTag:   "remove_tag",
	ActionExpireTag:   "expire_tag",
	ActionClearRemove: "clear_remove",
	ActionClearExpire: "clear_expire",
	ActionProbe:       "probe",
}

// String returns the action's lower-case name ("set", "remove_tag", ...), or
// "action(N)" for an invalid one.
func (a Action) String() string {
	if a.Valid() {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool { return a >= ActionSet && a <= maxAction }

// keyless reports whether a has no key: it applies to the whole cache, or
// to nothing (a probe).
func (a Action) keyless() bool {
	return a == ActionClearRemove || a == ActionClearExpire || a == ActionProbe
}

// Message is what a node tells the others when it changes an entry. Usually
// no value travels: receivers drop or mark stale their own copy and read L2
// next time. A set message may carry the new entry (Value), so that
// receivers install it without reading L2.
type Message struct {
	// Cache is the name of the cache that changed: 1 to MaxCacheNameLen
	// bytes.
	Cache string
	// Source names the sending node, 1 to MaxSourceLen bytes: core writes
	// its instance id and a run id ("id/run", new at each start).
	// Receivers ignore their own messages by it and number messages per
	// source.
	Source string
	// Seq is the sender's sequence number for this message. It starts at 1
	// (0 is invalid) and grows by one per message, so that a receiver can
	// see a gap (lost messages) per Source.
	Seq uint64
	// Action says what changed.
	Action Action
	// Key is the entry's key, or the tag for ActionRemoveTag and
	// ActionExpireTag; it is empty for ActionClearRemove and
	// ActionClearExpire. At most MaxKeyLen bytes.
	Key string
	// Timestamp is when the change was made, in Unix nanoseconds (the
	// sender's clock).
	Timestamp int64
	// TraceParent is the W3C traceparent of the write, so that the receipt
	// can link to it; empty when the write was not traced. At most
	// MaxTraceParentLen bytes.
	TraceParent string
	// Value, when not nil, is the new entry of a set message, encoded as
	// in L2 (l2.Envelope): 1 to MaxValueLen bytes. Receivers install it as
	// if they had read it from L2. Only ActionSet carries one.
	Value []byte
	// Flags are reserved and must be zero. Bit 0 is FlagSigned (set by
	// Keyring.Seal on the encoded bytes) and bit 1 FlagValue (set by
	// AppendBinary when Value is not nil); neither belongs here.
	Flags uint8
}

// AppendBinary appends the wire encoding of m (version WireVersion) to dst
// and returns the extended slice, as encoding.BinaryAppender does. If m is
// invalid (a field out of its limits, Seq 0, an invalid Action, a key on a
// keyless action, a non-zero Flags) it returns dst unchanged and an error
// naming the field.
func (m *Message) AppendBinary(dst []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return dst, fmt.Errorf("backplane: invalid message: %w", err)
	}
	n := headerLen + 1 + len(m.Cache) + 1 + len(m.Source) + 1 + len(m.TraceParent) + 2 + len(m.Key)
	flags := m.Flags
	if m.Value != nil {
		n += 4 + len(m.Value)
		flags |= FlagValue
	}
	dst = slices.Grow(dst, n)
	dst = append(dst, WireVersion, flags, byte(m.Action))
	dst = binary.LittleEndian.AppendUint64(dst, m.Seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.Timestamp))
	dst = append(dst, byte(len(m.Cache)))
	dst = append(dst, m.Cache...)
	dst = append(dst, byte(len(m.Source)))
	dst = append(dst, m.Source...)
	dst = append(dst, byte(len(m.TraceParent)))
	dst = append(dst, m.TraceParent...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(m.Key)))
	dst = append(dst, m.Key...)
	if m.Value != nil {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(m.Value)))
		dst = append(dst, m.Value...)
	}
	return dst, nil
}

// validate checks what both AppendBinary and DecodeMessage require, so that
// whatever decodes re-encodes to the same bytes.
func (m *Message) validate() error {
	switch {
	case m.Flags != 0:
		return fmt.Errorf("Flags is 0x%02x, reserved bits must be zero", m.Flags)
	case !m.Action.Valid():
		return fmt.Errorf("Action %v is not a defined action", m.Action)
	case m.Seq == 0:
		return errors.New("Seq is 0, sequence numbers start at 1")
	case m.Cache == "":
		return errors.New("Cache is empty")
	case len(m.Cache) > MaxCacheNameLen:
		return fmt.Errorf("Cache is %d bytes, more than MaxCacheNameLen (%d)", len(m.Cache), MaxCacheNameLen)
	case m.Source == "":
		return errors.New("Source is empty")
	case len(m.Source) > MaxSourceLen:
		return fmt.Errorf("Source is %d bytes, more than MaxSourceLen (%d)", len(m.Source), MaxSourceLen)
	case len(m.TraceParent) > MaxTraceParentLen:
		return fmt.Errorf("TraceParent is %d bytes, more than MaxTraceParentLen (%d)", len(m.TraceParent), MaxTraceParentLen)
	case len(m.Key) > MaxKeyLen:
		return fmt.Errorf("Key is %d bytes, more than MaxKeyLen (%d)", len(m.Key), MaxKeyLen)
	case m.Action.keyless() && m.Key != "":
		return fmt.Errorf("Key is %d bytes, want none for action %v", len(m.Key), m.Action)
	case m.Value != nil && m.Action != ActionSet:
		return fmt.Errorf("Value is %d bytes on action %v, only set carries one", len(m.Value), m.Action)
	case m.Value != nil && len(m.Value) == 0:
		return errors.New("Value is empty but not nil, want nil or 1 byte or more")
	case len(m.Value) > MaxValueLen:
		return fmt.Errorf("Value is %d bytes, more than MaxValueLen (%d)", len(m.Value), MaxValueLen)
	}
	return nil
}

// DecodeMessage decodes a message written by AppendBinary. Any input that is
// not exactly one valid message of WireVersion is an error wrapping
// ErrCorrupt that says what is wrong and at which byte offset; input longer
// than MaxMessageLen is refused before any field is read. It never panics,
// does not retain data, and allocates no more than the strings the input
// holds.
func DecodeMessage(data []byte) (Message, error) {
	var m Message
	if err := m.decode(data); err != nil {
		return Message{}, err
	}
	return m, nil
}

// decode fills m from data, leaving it partly filled on error.
func (m *Message) decode(data []byte) error {
	d := decoder{data: data}
	if len(data) == 0 {
		return d.fail(0, "empty input")
	}
	if v := data[0]; v != WireVersion {
		return d.fail(0, fmt.Sprintf("unsupported version %d (want %d)", v, WireVersion))
	}
	if len(data) < minMessageLen {
		return d.fail(len(data), fmt.Sprintf("truncated: %d bytes, a message has at least %d", len(data), minMessageLen))
	}
	if len(data) > MaxMessageLen {
		// Refused before any field is read: an oversized payload costs
		// nothing but this comparison.
		return d.fail(MaxMessageLen, fmt.Sprintf("%d bytes, longer than any message (MaxMessageLen is %d)", len(data), MaxMessageLen))
	}
	flags := data[1]
	if flags&^FlagValue != 0 {
		return d.fail(1, fmt.Sprintf("unsupported flags 0x%02x", flags))
	}
	if m.Action = Action(data[2]); !m.Action.Valid() {
		return d.fail(2, fmt.Sprintf("unknown action %d", data[2]))
	}
	if m.Seq = binary.LittleEndian.Uint64(data[3:]); m.Seq == 0 {
		return d.fail(3, "sequence number 0")
	}
	m.Timestamp = int64(binary.LittleEndian.Uint64(data[11:]))
	d.off = headerLen
	var ok bool
	if m.Cache, ok = d.str8("cache name", 1, MaxCacheNameLen); !ok {
		return d.err
	}
	if m.Source, ok = d.str8("source", 1, MaxSourceLen); !ok {
		return d.err
	}
	if m.TraceParent, ok = d.str8("traceparent", 0, MaxTraceParentLen); !ok {
		return d.err
	}
	keyOff := d.off
	if m.Key, ok = d.str16("key"); !ok {
		return d.err
	}
	if m.Action.keyless() && m.Key != "" {
		return d.fail(keyOff, fmt.Sprintf("%d-byte key on action %v, which takes none", len(m.Key), m.Action))
	}
	if flags&FlagValue != 0 {
		if m.Action != ActionSet {
			return d.fail(1, fmt.Sprintf("value flag on action %v, only set carries a value", m.Action))
		}
		if m.Value, ok = d.value(); !ok {
			return d.err
		}
	}
	if d.off != len(data) {
		return d.fail(d.off, fmt.Sprintf("%d trailing bytes", len(data)-d.off))
	}
	return nil
}

// decoder reads length-prefixed strings, checking each length against the
// bytes that remain before it allocates.
type decoder struct {
	data []byte
	off  int
	err  error
}

func (d *decoder) fail(off int, what string) error {
	d.err = fmt.Errorf("%w: %s at offset %d", ErrCorrupt, what, off)
	return d.err
}

// str8 reads a string with a one-byte length between lo and hi.
func (d *decoder) str8(field string, lo, hi int) (string, bool) {
	if d.off >= len(d.data) {
		d.fail(d.off, "truncated before the "+field+" length")
		return "", false
	}
	n := int(d.data[d.off])
	if n < lo || n > hi {
		d.fail(d.off, fmt.Sprintf("%s length %d, want %d to %d", field, n, lo, hi))
		return "", false
	}
	return d.bytes(field, d.off+1, n)
}

// str16 reads a string with a two-byte little-endian length.
func (d *decoder) str16(field string) (string, bool) {
	if len(d.data)-d.off < 2 {
		d.fail(d.off, "truncated before the "+field+" length")
		return "", false
	}
	n := int(binary.LittleEndian.Uint16(d.data[d.off:]))
	return d.bytes(field, d.off+2, n)
}

// value reads a value with a four-byte little-endian length, 1 to
// MaxValueLen, as a copy.
func (d *decoder) value() ([]byte, bool) {
	if len(d.data)-d.off < 4 {
		d.fail(d.off, "truncated before the value length")
		return nil, false
	}
	n := binary.LittleEndian.Uint32(d.data[d.off:])
	if n == 0 || n > MaxValueLen {
		d.fail(d.off, fmt.Sprintf("value length %d, want 1 to %d", n, MaxValueLen))
		return nil, false
	}
	start := d.off + 4
	if len(d.data)-start < int(n) {
		d.fail(start, fmt.Sprintf("truncated value: %d bytes announced, %d remain", n, len(d.data)-start))
		return nil, false
	}
	d.off = start + int(n)
	return slices.Clone(d.data[start:d.off]), true
}

// bytes returns the n bytes at start as a string and moves past them.
func (d *decoder) bytes(field string, start, n int) (string, bool) {
	if len(d.data)-start < n {
		d.fail(start, fmt.Sprintf("truncated %s: %d bytes announced, %d remain", field, n, len(d.data)-start))
		return "", false
	}
	d.off = start + n
	return string(d.data[start:d.off]), true
}
