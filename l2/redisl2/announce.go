package redisl2

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/internal/rediscall"
)

// setIfNewerAndPublish is setIfNewer followed by PUBLISH ARGV[4] on channel
// ARGV[3], whether or not it stored: one script, so one round trip, and
// atomic, so a subscriber that gets the message and then reads the key
// finds the write (or a newer one).
var setIfNewerAndPublish = redis.NewScript(olderOrForeign + `
if stored == 1 then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return stored
`)

// publisher is what redisbackplane.Backplane offers (PublishClient), as an
// interface so that this package does not import it.
type publisher interface {
	PublishClient() (client redis.UniversalClient, sharded bool)
}

// AnnouncesOn reports whether bp is a redisbackplane.Backplane publishing
// with classic (not sharded) pub/sub on the same single Redis server as the
// Store: the same client, or two single-node clients (not failover, not
// cluster) with the same network and address. Then SetIfNewerAndPublish
// reaches bp's subscribers and core writes and announces each change in one
// round trip. To be sure it is detected, give both the same client.
func (s *Store) AnnouncesOn(bp backplane.Backplane) bool {
	p, ok := bp.(publisher)
	if !ok {
		return false
	}
	client, sharded := p.PublishClient()
	if sharded || client == nil {
		return false
	}
	mine, ok1 := s.client.(*redis.Client)
	theirs, ok2 := client.(*redis.Client)
	if !ok1 || !ok2 {
		// A cluster: the script runs on the key's node, and a message
		// published there may overtake those bp publishes on the
		// channel's node.
		return false
	}
	if mine == theirs {
		return true
	}
	mo, to := mine.Options(), theirs.Options()
	// A failover client's Addr is a placeholder, not the master's.
	return mo.Addr != "FailoverClient" && mo.Addr == to.Addr && mo.Network == to.Network
}

// SetIfNewerAndPublish stores value under key as SetIfNewer does and
// publishes payload on channel in the same script: one round trip, and no
// subscriber can get payload before the write is visible. It publishes
// whether or not it stored.
func (s *Store) SetIfNewerAndPublish(ctx context.Context, key string, value []byte, ttl time.Duration, version int64, channel string, payload []byte) (bool, error) {
	keys, entry, ms, err := s.conditional(ctx, "set if newer and publish", key, value, ttl, version)
	if err != nil {
		return false, err
	}
	msg := payload
	if !s.call.Inline(ctx) {
		// The command may outlive the call (rediscall.Do): it gets a copy.
		msg = append([]byte(nil), payload...)
	}
	stored, err := rediscall.Do(s.call, ctx, func(ctx context.Context) (int64, error) {
		return setIfNewerAndPublish.Run(ctx, s.client, keys, entry, ms, channel, msg).Int64()
	})
	if err != nil {
		return false, wrap(ctx, "set if newer and publish", err)
	}
	return stored == 1, nil
}
