package backplane

import (
	"strconv"
	"strings"
)

// channelPrefix starts every channel name; it carries WireVersion so that
// nodes speaking different versions never share a channel (a test keeps the
// two in step).
const channelPrefix = "strata.v1."

// escapeChar introduces an escaped byte in a channel name.
const escapeChar = '_'

const upperHex = "0123456789ABCDEF"

// ChannelName returns the channel (Redis), subject (NATS) or exchange
// (RabbitMQ) name on which the messages of the named cache travel:
// "strata.v1." followed by the cache name, escaped.
//
// ASCII letters, digits and '-' stand for themselves; '_' is written "__";
// every other byte (including '.', so that the name adds no NATS token) is
// written '_' followed by its value in two upper-case hex digits, so
// "user_sessions" gives "strata.v1.user__sessions" and "a.b c" gives
// "strata.v1.a_2Eb_20c". The empty name is written "_". The escaping is
// reversible, so distinct cache names always give distinct channels, and the
// result is a valid Redis channel, a valid NATS subject (no spaces, '*', '>'
// or empty tokens) and, for names of at most MaxCacheNameLen bytes, a valid
// RabbitMQ exchange name (letters, digits, '-', '_', '.', ':'; at most 255
// bytes).
func ChannelName(cache string) string {
	if cache == "" {
		return channelPrefix + string(escapeChar)
	}
	var b strings.Builder
	b.Grow(len(channelPrefix) + len(cache))
	b.WriteString(channelPrefix)
	for _, c := range []byte(cache) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		case c == escapeChar:
			b.WriteString("__")
		default:
			b.WriteByte(escapeChar)
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0x0f])
		}
	}
	return b.String()
}

// cacheFromChannel reverses ChannelName. It reports false for a name
// ChannelName cannot return.
func cacheFromChannel(channel string) (string, bool) {
	name, ok := strings.CutPrefix(channel, channelPrefix)
	if !ok || name == "" {
		return "", false
	}
	if name == string(escapeChar) {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		case c != escapeChar || i+1 >= len(name):
			return "", false
		case name[i+1] == escapeChar:
			b.WriteByte(escapeChar)
			i++
		default:
			if i+2 >= len(name) || !isUpperHex(name[i+1]) || !isUpperHex(name[i+2]) {
				return "", false
			}
			v, _ := strconv.ParseUint(name[i+1:i+3], 16, 8)
			if c := byte(v); 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == escapeChar {
				return "", false // ChannelName writes these bytes as themselves or "__"
			}
			b.WriteByte(byte(v))
			i += 2
		}
	}
	return b.String(), true
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }
