package redisl2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/rediscall"
	"github.com/stratacache/strata/l2"
)

var _ l2.Locker = (*Store)(nil)

// unlock deletes KEYS[1] only when its value is ARGV[1] (the token of the
// holder asking), so that an owner whose lock expired never frees the lock
// someone else took since. It returns 1 when it deleted, 0 when not.
var unlock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// TryLock takes the lock named key (with the Store's KeyPrefix, in the key
// space of entries) for ttl if nobody holds it: SET key token NX PX ttl,
// where token is 16 random bytes in hex. It returns the token and true when
// it took the lock, "" and false (nil error) when someone holds it. The ttl
// is rounded up to whole milliseconds; a ttl that is not positive is an
// error.
func (s *Store) TryLock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if err := s.begin(ctx, "lock"); err != nil {
		return "", false, err
	}
	px, err := ttlMillis("lock", ttl)
	if err != nil {
		return "", false, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token, k := hex.EncodeToString(b[:]), s.prefix+key
	_, err = rediscall.Do(s.call, ctx, func(ctx context.Context) (string, error) {
		return s.client.SetArgs(ctx, k, token, redis.SetArgs{Mode: "NX", TTL: px}).Result()
	})
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrap(ctx, "lock", err)
	}
	return token, true, nil
}

// Unlock releases the lock named key if token still owns it, in one atomic
// Lua script: a lock that expired and was taken by another holder is left
// alone, and a missing lock is not an error.
func (s *Store) Unlock(ctx context.Context, key, token string) error {
	if err := s.begin(ctx, "unlock"); err != nil {
		return err
	}
	keys := []string{s.prefix + key}
	_, err := rediscall.Do(s.call, ctx, func(ctx context.Context) (int64, error) {
		return unlock.Run(ctx, s.client, keys, token).Int64()
	})
	return wrap(ctx, "unlock", err)
}
