package backplane

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Signing. A node configured with keys seals every message it publishes:
// bit 0 of the flags byte (FlagSigned) is set and an HMAC-SHA256 of every
// preceding byte is appended (SignatureLen bytes). A receiver with the same
// keys opens each payload: a payload not signed, or signed with none of its
// keys, is rejected, so a party that can publish on the channel but lacks the
// key cannot evict or clear anything. Several keys allow rotation: the first
// one signs, any of them verifies.

// FlagSigned marks a sealed message (bit 0 of the flags byte).
const FlagSigned uint8 = 1 << 0

// SignatureLen is the length of the HMAC-SHA256 trailer of a sealed message.
const SignatureLen = sha256.Size

// MaxPayloadLen is the length of the longest payload a node publishes: a
// signed message of MaxMessageLen bytes. Keyring.Open refuses a longer one
// before computing anything, and a transport may drop one on receipt.
const MaxPayloadLen = MaxMessageLen + SignatureLen

// MinSigningKeyLen is the shortest key a Keyring accepts.
const MinSigningKeyLen = 16

// ErrBadSignature is wrapped by every error Keyring.Open returns.
var ErrBadSignature = errors.New("backplane: message not signed with a known key")

// Keyring seals and opens messages with shared HMAC keys. It is safe for
// concurrent use.
type Keyring struct {
	keys [][]byte
}

// NewKeyring returns a keyring whose first key signs and whose keys all
// verify. Keys must be at least MinSigningKeyLen bytes.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("backplane: NewKeyring needs at least one key")
	}
	k := &Keyring{}
	for i, key := range keys {
		if len(key) < MinSigningKeyLen {
			return nil, fmt.Errorf("backplane: signing key %d is %d bytes, want at least %d", i, len(key), MinSigningKeyLen)
		}
		k.keys = append(k.keys, append([]byte(nil), key...))
	}
	return k, nil
}

// Seal turns msg, an encoded unsigned message (as AppendBinary writes it),
// into a signed one in place: it sets FlagSigned and appends the signature.
func (k *Keyring) Seal(msg []byte) ([]byte, error) {
	if len(msg) < 2 || msg[0] != WireVersion || msg[1]&FlagSigned != 0 {
		return msg, errors.New("backplane: Seal needs an encoded, unsigned message")
	}
	msg[1] |= FlagSigned
	mac := hmac.New(sha256.New, k.keys[0])
	mac.Write(msg)
	return mac.Sum(msg), nil
}

// Open verifies a sealed payload and returns the message it holds, ready for
// DecodeMessage, written into dst (which may be payload[:0] to reuse it). An
// unsigned payload, one longer than MaxPayloadLen (refused before the
// signature is computed or anything is copied) or a bad signature is an
// error wrapping ErrBadSignature.
func (k *Keyring) Open(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayloadLen {
		return nil, fmt.Errorf("%w: %d bytes, longer than any signed message (MaxPayloadLen is %d)", ErrBadSignature, len(payload), MaxPayloadLen)
	}
	if len(payload) < 2+SignatureLen || payload[1]&FlagSigned == 0 {
		return nil, fmt.Errorf("%w: unsigned or too short (%d bytes)", ErrBadSignature, len(payload))
	}
	body, sig := payload[:len(payload)-SignatureLen], payload[len(payload)-SignatureLen:]
	for _, key := range k.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), sig) {
			dst = append(dst[:0], body...)
			dst[1] &^= FlagSigned
			return dst, nil
		}
	}
	return nil, fmt.Errorf("%w: signature matches none of %d keys", ErrBadSignature, len(k.keys))
}
