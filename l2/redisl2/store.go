package redisl2

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/rediscall"
	"github.com/stratacache/strata/l2"
)

// Options configures a Store. The zero value (or a nil *Options) gives the
// defaults.
type Options struct {
	// KeyPrefix is prepended to every key, so that several caches or
	// applications can share one Redis database ("orders:" makes the key
	// "42" the Redis key "orders:42"). It may hold any bytes. On Redis
	// Cluster, a prefix with a hash tag ("{orders}:") puts every key on one
	// node; without one, keys spread over the cluster.
	KeyPrefix string
}

// Store is an l2.Store, l2.ConditionalStore and l2.MultiGetter on Redis.
// All methods are safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	call   rediscall.Runner
	prefix string
	// mget: the client talks to one node (*redis.Client: single or
	// failover), so GetMany can send one MGET for all keys.
	mget bool
	// owned: made by the URL opener; Close closes the client.
	owned  bool
	closed atomic.Bool
}

var (
	_ l2.Store            = (*Store)(nil)
	_ l2.ConditionalStore = (*Store)(nil)
	_ l2.MultiGetter      = (*Store)(nil)
	_ l2.Announcer        = (*Store)(nil)
)

// New returns a Store on client, which may be a *redis.Client (single node,
// or failover from redis.NewFailoverClient), a *redis.ClusterClient or any
// other redis.UniversalClient. opts may be nil. New sends no command: a
// server that cannot be reached shows in the first call. The Store never
// closes client.
func New(client redis.UniversalClient, opts *Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisl2: New: nil client")
	}
	s := &Store{client: client, call: rediscall.For(client)}
	if opts != nil {
		s.prefix = opts.KeyPrefix
	}
	_, s.mget = client.(*redis.Client)
	return s, nil
}

// Get returns the value stored under key. A missing or expired key is
// found == false with a nil error. A Redis string under the key that the
// Store did not write (it lacks the version header) is returned whole, as
// l2.Store says. A key of another Redis type (a list, a hash) is an error
// wrapping l2.ErrPermanent.
func (s *Store) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return nil, false, err
	}
	k := s.prefix + key
	raw, err := rediscall.Do(s.call, ctx, func(ctx context.Context) ([]byte, error) {
		return s.client.Get(ctx, k).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap(ctx, "get", err)
	}
	return entryValue(raw), true, nil
}

// Set stores value under key for ttl, replacing any value and TTL, whatever
// its Redis type. Redis counts TTLs in milliseconds: a ttl that is not a
// whole number of them is rounded up. A ttl that is not positive is an error
// wrapping l2.ErrPermanent. A value stored by Set is older than any version:
// a later SetIfNewer replaces it.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.begin(ctx, "set"); err != nil {
		return err
	}
	px, err := ttlMillis("set", ttl)
	if err != nil {
		return err
	}
	if err := checkSize("set", value); err != nil {
		return err
	}
	k, entry := s.prefix+key, appendEntry(nil, math.MinInt64, value)
	_, err = rediscall.Do(s.call, ctx, func(ctx context.Context) (string, error) {
		return s.client.Set(ctx, k, entry, px).Result()
	})
	return wrap(ctx, "set", err)
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete"); err != nil {
		return err
	}
	k := s.prefix + key
	_, err := rediscall.Do(s.call, ctx, func(ctx context.Context) (int64, error) {
		return s.client.Del(ctx, k).Result()
	})
	return wrap(ctx, "delete", err)
}

// Close makes every later call of the Store's other methods return an error
// wrapping l2.ErrClosed. It closes the client only when the Store was made
// by l2.Open, never a client passed to New. Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.owned {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redisl2: close: %w", err)
	}
	return nil
}

// begin does what every data call does first: refuse after Close and with
// a done ctx.
func (s *Store) begin(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("redisl2: %s: %w", op, l2.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisl2: %s: %w", op, err)
	}
	return nil
}

// wrap prefixes err with the package and operation, keeping ctx's error
// visible to errors.Is when ctx is done (go-redis reports a deadline as a
// network timeout, not as ctx.Err()), and marking a reply that the same
// command on the same key gets every time with l2.ErrPermanent. It returns
// nil for a nil err.
func wrap(ctx context.Context, op string, err error) error {
	switch cerr := ctxErr(ctx); {
	case err == nil:
		return nil
	case permanent(err): // the server's whole answer, whatever ctx did
		return fmt.Errorf("redisl2: %s: %w: %w", op, l2.ErrPermanent, err)
	case cerr != nil && !errors.Is(err, cerr):
		return fmt.Errorf("redisl2: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("redisl2: %s: %w", op, err)
}

// ctxErr returns ctx.Err(), or context.DeadlineExceeded once ctx's deadline
// has passed though ctx's own timer has not fired yet: a client that puts
// the deadline on its socket (ContextTimeoutEnabled) can time out first.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// permanent reports whether err is a Redis reply that the same command on
// the same key gets every time: WRONGTYPE (the key holds a list, a hash,
// ...), or an expire time the server refuses. Other replies (LOADING,
// READONLY, OOM, NOAUTH, CLUSTERDOWN, ...) are about the server, not the key.
func permanent(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE") || redis.HasErrorPrefix(err, "invalid expire time")
}

// MaxValueLen is the longest value Set and SetIfNewer send: Redis's default
// proto-max-bulk-len (512 MiB), the longest string a client may send, less
// the version header. A longer value is an error wrapping
// l2.ErrValueTooLarge, and is not sent. A server whose proto-max-bulk-len
// was lowered drops the connection of a client that sends a longer value
// (the write fails with a connection error, not with l2.ErrValueTooLarge).
const MaxValueLen = 512<<20 - headerLen

// checkSize refuses a value longer than MaxValueLen.
func checkSize(op string, value []byte) error {
	if len(value) > MaxValueLen {
		return fmt.Errorf("redisl2: %s: %w: %d bytes, limit %d (proto-max-bulk-len less the %d-byte version header)",
			op, l2.ErrValueTooLarge, len(value), MaxValueLen, headerLen)
	}
	return nil
}

// ttlMillis checks ttl and rounds it up to whole milliseconds, the unit of
// Redis's PX (down, for a ttl within a millisecond of the longest Duration,
// where rounding up would overflow).
func ttlMillis(op string, ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("redisl2: %s: %w: ttl must be positive, got %v", op, l2.ErrPermanent, ttl)
	}
	if ttl > math.MaxInt64-time.Millisecond {
		return ttl.Truncate(time.Millisecond), nil
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond), nil
}
