// Package l2 defines the distributed second-level cache that strata nodes share:
// a Store of opaque bytes with a time to live, the binary entry envelope core
// writes into it, and a registry of URL schemes so a service picks its store per
// environment with Open.
//
// Adapters (meml2, redisl2, natskvl2) only move bytes; core owns timeouts,
// circuit breaking, fail-safe and recovery. Every adapter must pass the
// conformance suite in l2test.
package l2

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by every Store method called after Close.
var ErrClosed = errors.New("l2: store closed")

// ErrValueTooLarge is wrapped by the error Set or SetIfNewer returns when the
// store refuses a value for its size (the server's limit, or the adapter's),
// with the size and the limit in the message where the adapter knows them.
// It is a permanent error: the same value fails the same way every time, so
// core does not retry the write and does not count it against the store's
// health (the circuit breaker). A store without a value limit never returns
// it.
var ErrValueTooLarge = errors.New("l2: value too large for the store")

// Store holds opaque byte values under string keys, each with a time to live.
// All methods are safe for concurrent use. Keys and values may hold any bytes.
// Every method honours ctx: when ctx is done it returns promptly with an error
// wrapping ctx.Err().
type Store interface {
	// Get returns the value stored under key. A missing or expired key is
	// found == false with a nil error; only a failure to ask is an error.
	// The returned slice belongs to the caller.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Set stores value under key for ttl (ttl > 0), replacing any value.
	// The store must not retain value after Set returns.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases what the store opened itself (not a client the user
	// passed in). It is idempotent; later calls of other methods return an
	// error wrapping ErrClosed.
	Close() error
}

// ConditionalStore is a Store that can refuse to overwrite a newer entry, so
// that a slow writer never replaces what a faster one stored after it (no lost
// updates across nodes). Core detects it with a type assertion.
type ConditionalStore interface {
	Store
	// SetIfNewer stores value under key for ttl only when the key holds no
	// value or one stored with a version lower than version. It reports
	// whether it stored. Versions are the entries' creation times in Unix
	// nanoseconds.
	SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (stored bool, err error)
}

// MultiGetter is a Store that reads many keys in one round trip. Core detects
// it with a type assertion and falls back to Get per key otherwise.
type MultiGetter interface {
	Store
	// GetMany returns one value per key, in order; a missing key is nil.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
}

// Locker is a Store that also offers a distributed lock, so that nodes
// missing the same key run its factory once in total (core's
// Options.DistributedStampedeLock). Core detects it with a type assertion.
type Locker interface {
	Store
	// TryLock takes the lock named key for ttl if nobody holds it, and
	// returns a token proving ownership; ok is false when another holder
	// has it. The lock frees itself after ttl.
	TryLock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
	// Unlock releases the lock named key if token still owns it (an expired
	// lock taken by someone else is left alone).
	Unlock(ctx context.Context, key, token string) error
}
