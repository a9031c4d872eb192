package redisl2

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/rediscall"
)

// setIfNewer stores ARGV[1] (an entry: version header, then value) under
// KEYS[1] with a TTL of ARGV[2] milliseconds, unless the key holds an entry
// whose version is the same or higher. It returns 1 when it stored, 0 when
// not. Only the stored header is read (GETRANGE), whatever the value's size.
//
// Versions are compared as two 8-hex-digit halves (each below 2^32, exact in
// a Lua double) rather than as one number (today's Unix nanoseconds are
// beyond 2^53) or as strings (Lua compares strings with strcoll, which
// depends on the server's locale). A value without a valid header, or a key
// of another type (a list, a hash), was written by something else: it is
// older than any entry, and replaced, as SET replaces it: GETRANGE on such a
// key fails with WRONGTYPE, which redis.pcall returns as a table instead of
// ending the script (one command fewer than asking TYPE first).
var setIfNewer = redis.NewScript(olderOrForeign + `
if stored == 1 then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return stored
`)

// olderOrForeign is the start of the conditional scripts: it sets stored to
// 1 unless KEYS[1] holds an entry whose version is the same as or higher
// than ARGV[1]'s.
const olderOrForeign = `
local stored = 1
local old = redis.pcall('GETRANGE', KEYS[1], 0, 15)
if type(old) == 'string' and #old == 16 and not string.find(old, '[^0-9a-f]') then
	local new = ARGV[1]
	local oh, ol = tonumber(string.sub(old, 1, 8), 16), tonumber(string.sub(old, 9, 16), 16)
	local nh, nl = tonumber(string.sub(new, 1, 8), 16), tonumber(string.sub(new, 9, 16), 16)
	if oh and ol and (oh > nh or (oh == nh and ol >= nl)) then
		stored = 0
	end
end
`

// SetIfNewer stores value under key for ttl when the key is missing or
// expired, holds a value stored by Set or by something else (including a
// key of another type), or holds one stored by SetIfNewer with a lower
// version; it reports whether it stored. The check and the write are one
// atomic Lua script on the server, and versions are compared exactly as
// int64. The ttl is rounded up to whole milliseconds; a ttl that is not
// positive is an error wrapping l2.ErrPermanent.
func (s *Store) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	keys, entry, ms, err := s.conditional(ctx, "set if newer", key, value, ttl, version)
	if err != nil {
		return false, err
	}
	stored, err := rediscall.Do(s.call, ctx, func(ctx context.Context) (int64, error) {
		return setIfNewer.Run(ctx, s.client, keys, entry, ms).Int64()
	})
	if err != nil {
		return false, wrap(ctx, "set if newer", err)
	}
	return stored == 1, nil
}

// conditional checks what a conditional write (op) needs and returns the
// script's key, its entry (version header, then value) and the TTL in
// milliseconds.
func (s *Store) conditional(ctx context.Context, op, key string, value []byte, ttl time.Duration, version int64) ([]string, []byte, int64, error) {
	if err := s.begin(ctx, op); err != nil {
		return nil, nil, 0, err
	}
	px, err := ttlMillis(op, ttl)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := checkSize(op, value); err != nil {
		return nil, nil, 0, err
	}
	return []string{s.prefix + key}, appendEntry(nil, version, value), px.Milliseconds(), nil
}
