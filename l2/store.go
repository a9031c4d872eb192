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
	"time"

	"github.com/stratacache/strata/backplane"
)

// Store holds opaque byte values under string keys, each with a time to live.
// All methods are safe for concurrent use. Keys and values may hold any bytes.
//
// Core sorts every error a Store returns with Classify, so the error must say
// what happened:
//
//   - Every method honours ctx: when ctx is done, before or during the call,
//     it returns promptly with an error wrapping ctx.Err(), so that
//     errors.Is(err, context.Canceled) (or context.DeadlineExceeded) holds
//     whatever the client library returned. A call made with a ctx already
//     done changes nothing.
//   - An error that the same call on the same key would meet every time
//     (the key holds a value of another type, the server refuses the value
//     or the TTL for good, a ttl that is not positive) wraps ErrPermanent;
//     one for a value's size wraps ErrValueTooLarge, which wraps
//     ErrPermanent.
//   - Any other error means that the store could not be asked (unreachable,
//     timed out, overloaded): core counts it against the store's health.
//
// A Store never judges the bytes it holds: a value under a key that it did
// not write itself (a foreign writer ran SET key hello) is not an error.
// Get and GetMany return it, found, with its bytes as stored (an adapter
// strips only framing it recognises as its own), and core's DecodeEnvelope
// rejects it with ErrCorrupt: a miss. Stores do not return ErrCorrupt.
type Store interface {
	// Get returns the value stored under key. A missing or expired key is
	// found == false with a nil error. A key that holds a value of another
	// type than the store's (a Redis list) is an error wrapping
	// ErrPermanent. The returned slice belongs to the caller.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Set stores value under key for ttl (ttl > 0), replacing any value,
	// foreign ones included. Any ttl up to 100 years (core's "forever")
	// works: one longer than the store keeps entries is cut to its longest.
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
	// nanoseconds. A value the store did not write (foreign bytes) is older
	// than any version: SetIfNewer replaces it.
	SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (stored bool, err error)
}

// Announcer is a ConditionalStore that can publish a backplane message in
// the same round trip as a conditional write, when the backplane runs on the
// same server (redisl2 next to redisbackplane on one Redis). Core detects it
// with a type assertion, asks AnnouncesOn once, at New, and then writes and
// announces each change with one call instead of two. It is the only link
// between an L2 adapter and a backplane adapter; core works the same
// without it.
type Announcer interface {
	ConditionalStore
	// AnnouncesOn reports whether SetIfNewerAndPublish reaches the
	// subscribers of bp: the store and bp talk to the same server, and a
	// payload the store publishes reaches bp's subscriptions, in order with
	// the payloads bp publishes itself (each call having returned before
	// the next began).
	AnnouncesOn(bp backplane.Backplane) bool
	// SetIfNewerAndPublish does what SetIfNewer does and then publishes
	// payload on channel, as one atomic step on the server: a subscriber
	// that receives payload and then reads key finds this write, or a newer
	// one. It publishes whether or not it stored. On an error neither, or
	// both, may have happened.
	SetIfNewerAndPublish(ctx context.Context, key string, value []byte, ttl time.Duration, version int64, channel string, payload []byte) (stored bool, err error)
}

// MultiGetter is a Store that reads many keys in one round trip. Core detects
// it with a type assertion and falls back to Get per key otherwise.
type MultiGetter interface {
	Store
	// GetMany returns one value per key, in order; a missing key is nil.
	// Foreign values are returned as Get returns them. A key that holds a
	// value of another type is nil, as missing: an error would fail the
	// other keys of the batch.
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
