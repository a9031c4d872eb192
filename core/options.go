package core

import (
	"log/slog"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/serializer"
)

// Defaults of EntryOptions, as returned by DefaultEntryOptions.
const (
	DefaultDuration                 = 30 * time.Second
	DefaultFailSafeMaxDuration      = 24 * time.Hour
	DefaultFailSafeThrottleDuration = 30 * time.Second
	// DefaultL1MaxEntries bounds L1 when Options sets no bound.
	DefaultL1MaxEntries = 100_000
	// DefaultCloseTimeout bounds how long Close waits for background work.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultTombstoneTTL is Options.TombstoneTTL's default.
	DefaultTombstoneTTL = 10 * time.Minute
	// MaxChangedAtLead is how far ahead of a node's clock a WithChangedAt
	// time may be: the versions of every later change of the node run that
	// far ahead, and a node whose clock is behind it by more than the rest
	// of a day would drop them. An hour leaves 23 for the nodes' skew, and
	// is far beyond a healthy source's clock (a database ahead of the
	// consumer by minutes still works).
	MaxChangedAtLead = time.Hour
	// DefaultMarkerTTL is Options.MarkerTTL's default.
	DefaultMarkerTTL = 7 * 24 * time.Hour
	// DefaultMaxKeyLength is Options.MaxKeyLength's default.
	DefaultMaxKeyLength = 16 << 10
	// DefaultMaxTags is Options.MaxTags's default.
	DefaultMaxTags = 64
	// DefaultBackplanePublishTimeout bounds one publish.
	DefaultBackplanePublishTimeout = 2 * time.Second
	// DefaultBackplaneStalenessBound is Options.BackplaneStalenessBound's
	// default.
	DefaultBackplaneStalenessBound = 5 * time.Second
	// DefaultAutoRecoveryMaxItems bounds the auto-recovery queue.
	DefaultAutoRecoveryMaxItems = 10_000
	// DefaultAutoRecoveryDelay is how often auto-recovery retries.
	DefaultAutoRecoveryDelay = 2 * time.Second
	// MaxDuration is the longest duration the cache uses: a longer one
	// (an entry's Duration, FailSafeMaxDuration, a timeout, a TTL) counts
	// as MaxDuration, about 100 years, which is forever for a cache. So
	// math.MaxInt64 is a valid way to say "never".
	MaxDuration = 100 * 365 * 24 * time.Hour
	// DefaultBackplaneValueLimit is Options.BackplaneValueLimit's default:
	// the longest encoded entry a set message carries (values on the
	// backplane, EntryOptions.ValueOnBackplane).
	DefaultBackplaneValueLimit = 4 << 10
	// DefaultMaxL2ValueSize is the longest entry, in bytes of its encoded
	// L2 envelope, that core writes to L2: a longer one is cached in L1
	// only (counted in Stats.SerializationErrors). The auto-recovery queue
	// holds at most four times as many bytes.
	DefaultMaxL2ValueSize = 16 << 20
)

// Options configure a Cache. The zero value is valid: an L1-only cache named
// "default" with DefaultEntryOptions. New rejects invalid options with an
// *OptionError naming the field.
type Options struct {
	// Name identifies the cache in logs, traces and (later) on the backplane.
	// Default "default".
	Name string
	// KeyPrefix is prepended to every key in L2, so several caches can share
	// one store.
	KeyPrefix string
	// InstanceID identifies this node; default a random id.
	InstanceID string
	// DefaultEntryOptions apply to every call, adjusted per call by the
	// With... options. Nil means DefaultEntryOptions(); a non-nil value is
	// used as given (start from DefaultEntryOptions() and change fields).
	DefaultEntryOptions *EntryOptions
	// DefaultEntryOptionsFor, when set, gives the options the calls about
	// one key start from instead of DefaultEntryOptions (nil: those):
	// GetOrSet (hits included), Get, Set, Remove and Expire of key, before
	// their With... options. It is called on every such call: it must be
	// fast, must not block, and must not change the options it returned
	// (return a pointer to options built once). GetOrSetMany and the tag
	// and Clear calls use DefaultEntryOptions. Invalid options it returns
	// make the call return an *OptionError.
	DefaultEntryOptionsFor func(key string) *EntryOptions

	// L1MaxEntries bounds the in-memory cache by entry count (default
	// DefaultL1MaxEntries). Ignored when L1MaxWeight is set.
	L1MaxEntries int
	// L1MaxWeight bounds the in-memory cache by the total of L1Weigher's
	// results; L1Weigher is then required.
	L1MaxWeight uint64
	// L1Weigher gives an entry's weight (for example its size in bytes).
	L1Weigher func(key string, value any) uint32

	// L2 is the optional distributed cache shared by all nodes.
	L2 l2.Store
	// DistributedStampedeLock makes nodes missing the same key run its
	// factory once in total, through a lock in L2 (which must implement
	// l2.Locker): the other nodes wait for the value to appear in L2, up to
	// EntryOptions.LockTimeout (else the lock's TTL: the factory hard
	// timeout + 1s, or DefaultDistributedLockTTL). Off by default: it costs
	// L2 round trips on every miss.
	DistributedStampedeLock bool
	// Serializer turns values into L2 bytes, and makes AutoClone's copies;
	// default JSON (jsonserializer).
	Serializer serializer.Serializer
	// AutoClone makes GetOrSet, Get and GetOrSetMany return a copy of each
	// value (made by the Serializer: encoded, then decoded), never the
	// value L1 holds, so that callers may change what they get. It costs
	// an encode and a decode per read; a value that cannot round-trip is
	// an error.
	AutoClone bool
	// Backplane is the optional transport that tells other nodes about
	// changes.
	Backplane backplane.Backplane

	// Logger receives the cache's logs; default: none.
	Logger *slog.Logger
	// Clock is the cache's time source. Nil means the system time read
	// through a coarse clock shared by the process (1 ms resolution, one
	// goroutine, stopped when the last cache closes). Use SystemClock inside
	// testing/synctest bubbles, or a fake clock in tests.
	Clock Clock
	// Observers are called at the start and end of each operation and on
	// each event (strataotel is one). With none the hot path pays nothing.
	Observers []Observer
	// Plugins add optional behaviour; see Plugin.
	Plugins []Plugin

	// CloseTimeout bounds how long Close waits for background work
	// (default DefaultCloseTimeout).
	CloseTimeout time.Duration

	// MaxKeyLength bounds keys and tags, in bytes (default
	// DefaultMaxKeyLength, at most 65535, the backplane's limit); longer
	// ones are an *OptionError.
	MaxKeyLength int
	// MaxTags bounds the tags of one entry (default DefaultMaxTags).
	MaxTags int

	// L2CircuitBreakerDuration, when > 0, stops calling L2 for that long
	// after a failure: reads miss, writes go to auto-recovery.
	L2CircuitBreakerDuration time.Duration
	// BackplaneCircuitBreakerDuration, when > 0, stops publishing for that
	// long after a failure: publishes go to auto-recovery.
	BackplaneCircuitBreakerDuration time.Duration
	// BackplaneSigningKeys, when set, sign every published message with
	// HMAC-SHA256 (the first key) and make the node drop, and count, any
	// message not signed with one of them: a party that can publish on the
	// channel but lacks the key cannot evict or clear anything. Several
	// keys allow rotation. Keys are at least 16 bytes.
	BackplaneSigningKeys [][]byte
	// BackplanePublishTimeout bounds one publish (default
	// DefaultBackplanePublishTimeout).
	BackplanePublishTimeout time.Duration
	// BackplaneStalenessBound is the longest a node serves an L1 entry as
	// fresh while its backplane is down and it cannot hear about changes:
	// an entry confirmed longer ago than that is served only as a stale
	// value (fail-safe). Default DefaultBackplaneStalenessBound. The same
	// bound applies while the node's subscription lags: its own messages
	// take longer than half of it to come back (docs/consistency.md,
	// "Delivery watermark").
	BackplaneStalenessBound time.Duration
	// BackplaneProbeInterval is how long a node that has published
	// nothing waits before it sends a probe, so that its delivery
	// watermark keeps moving (default: a quarter of the staleness bound).
	// Negative: no probes; lag is then seen only on the node's own
	// changes, so an idle node never counts as behind. Each probe reaches
	// every node: with many nodes, see docs/scaling.md.
	BackplaneProbeInterval time.Duration

	// WaitForInitialSubscribe, when > 0, makes New wait up to that long for
	// the backplane's first subscription to be live, and fail with a
	// *SubscribeError naming the backplane if it is not. With 0, New
	// returns at once and the node starts unsure, as while disconnected:
	// it serves an entry as fresh only within BackplaneStalenessBound of
	// loading it, and expires what it loaded once the subscription is live
	// (Ready waits for that).
	WaitForInitialSubscribe time.Duration

	// BackplaneValueLimit is the longest entry, in bytes of its encoded L2
	// envelope, that a set message carries when
	// EntryOptions.ValueOnBackplane is on (default
	// DefaultBackplaneValueLimit, at most backplane.MaxValueLen): a longer
	// one is announced without its value, and the other nodes read L2.
	BackplaneValueLimit int

	// IgnoreIncomingBackplaneMessages makes this node publish its changes
	// but apply none of the other nodes': its L1 copies then live their
	// full duration whatever the others change (it still reads its own
	// messages back for the delivery watermark, and still expires its L1
	// after a disconnection). For a node that only writes (a batch job),
	// or to measure what the backplane saves; it gives up the staleness
	// bound on this node (docs/consistency.md).
	IgnoreIncomingBackplaneMessages bool

	// TombstoneTTL is how long a Remove or Expire is remembered in L2 when
	// the store is an l2.ConditionalStore (default DefaultTombstoneTTL): a
	// node whose factory started before the removal cannot write its older
	// value back within that time.
	TombstoneTTL time.Duration
	// MarkerTTL is how long the markers of RemoveByTag, ExpireByTag and
	// Clear are kept in L2 (default DefaultMarkerTTL, 7 days), and so, with
	// an L2, the longest any entry lives, in L1 or L2, fail-safe included: a
	// longer duration is cut to it, so that no entry, whichever node wrote
	// it, outlives the marker that invalidates it. Give every node of a
	// cache the same value (MaxDuration: forever).
	MarkerTTL time.Duration

	// AutoRecoveryDisabled turns off the replay of failed L2 writes and
	// publishes.
	AutoRecoveryDisabled bool
	// AutoRecoveryMaxItems bounds the replay queue (default
	// DefaultAutoRecoveryMaxItems); past it the oldest item is dropped.
	AutoRecoveryMaxItems int
	// AutoRecoveryDelay is how often the queue is retried (default
	// DefaultAutoRecoveryDelay); a component coming back retries at once.
	AutoRecoveryDelay time.Duration

	// MaxL2ValueSize bounds the entries written to L2, in bytes of their
	// encoded envelope (default DefaultMaxL2ValueSize): a longer entry is
	// cached in L1 only, counted in Stats.SerializationErrors. The
	// auto-recovery queue holds at most four times as many bytes.
	MaxL2ValueSize int
}

// EntryOptions control how one entry is read, produced and stored. The
// defaults come from Options.DefaultEntryOptions, adjusted per call by the
// With... options; a factory may change them for its own result through
// FactoryContext.Options (adaptive caching).
type EntryOptions struct {
	// Duration is how long an entry is fresh (default 30s).
	Duration time.Duration
	// L1Duration, when > 0, replaces Duration for the in-memory cache.
	L1Duration time.Duration
	// L2Duration, when > 0, replaces Duration for the distributed cache.
	L2Duration time.Duration
	// Jitter, when > 0, adds a random extra in [0, Jitter) to the L1
	// duration, so entries written together do not expire together.
	Jitter time.Duration
	// SlidingExpiration, when > 0, keeps an entry fresh in this node's L1
	// only while it is read at least that often, and never past its
	// duration. Each node's copy slides with that node's reads; the L2
	// copy expires by L2Duration or Duration.
	SlidingExpiration time.Duration

	// FailSafe keeps entries physically for FailSafeMaxDuration so that when
	// the factory fails or times out the last value is served stale.
	FailSafe bool
	// FailSafeMaxDuration is how long a fail-safe entry may be served stale
	// (default 24h; at least Duration).
	FailSafeMaxDuration time.Duration
	// FailSafeThrottleDuration is how long a stale value served by fail-safe
	// is reused before the factory is tried again (default 30s).
	FailSafeThrottleDuration time.Duration
	// L2FailSafeMaxDuration, when > 0, replaces FailSafeMaxDuration for the
	// entry written to L2 (its TTL there): the shared copy may be kept
	// longer, or shorter, than the nodes' own.
	L2FailSafeMaxDuration time.Duration

	// FactorySoftTimeout, when > 0, is how long a caller waits for the
	// factory when a stale value can be served instead (fail-safe on).
	FactorySoftTimeout time.Duration
	// FactoryHardTimeout, when > 0, is how long a caller waits for the
	// factory at most: then the stale value, or ErrFactoryTimeout.
	FactoryHardTimeout time.Duration
	// BackgroundFactoryCompletion lets a timed-out factory finish in the
	// background and cache its result (default true). When false the
	// factory's context is cancelled when its caller times out.
	BackgroundFactoryCompletion bool

	// L2SoftTimeout and L2HardTimeout bound L2 reads and writes the same way.
	L2SoftTimeout time.Duration
	L2HardTimeout time.Duration

	// EagerRefreshThreshold, when in (0, 1), makes the first hit after that
	// fraction of Duration return the cached value and start one background
	// refresh. 0 disables it.
	EagerRefreshThreshold float64

	// Tags label the entry for RemoveByTag and ExpireByTag.
	Tags []string

	// LockTimeout, when > 0, bounds how long a caller waits for another
	// caller's factory on the same key: then it serves the stale value if
	// fail-safe allows, or runs the factory itself.
	LockTimeout time.Duration
	// DistributedLockTimeout, when > 0, bounds how long a run waits for
	// the distributed stampede lock (Options.DistributedStampedeLock)
	// instead of LockTimeout; with neither, the lock's TTL.
	DistributedLockTimeout time.Duration
	// SkipDistributedLock makes the call's run not take the distributed
	// stampede lock.
	SkipDistributedLock bool
	// SkipL2ReadWhenStale makes a call that holds a stale L1 value not
	// read L2 before calling the factory (nor Get read L2 then): for keys
	// whose L2 copy is no newer than L1's in practice, one round trip less
	// on each refresh.
	SkipL2ReadWhenStale bool

	// SkipL1Read and SkipL1Write bypass the in-memory cache.
	SkipL1Read, SkipL1Write bool
	// SkipL2Read and SkipL2Write bypass the distributed cache.
	SkipL2Read, SkipL2Write bool
	// SkipBackplane does not tell other nodes about this change.
	SkipBackplane bool
	// ValueOnBackplane makes the message of a Set or a factory's result
	// carry the new entry (up to Options.BackplaneValueLimit bytes
	// encoded): the other nodes install it in L1, under the rules of an L2
	// read, instead of reading L2 (docs/backplane.md). It needs an L2
	// write; a larger entry is announced as usual. Upgrade every node
	// first (docs/wire-format.md).
	ValueOnBackplane bool
	// BackgroundL2Writes and BackgroundBackplane return before the L2 write
	// or the backplane publish is done.
	BackgroundL2Writes, BackgroundBackplane bool
	// AllowStaleOnRead lets Get return a stale (fail-safe) value.
	AllowStaleOnRead bool

	// changedAt, set by WithChangedAt, is the earliest version (Unix
	// nanoseconds) a Set, Remove, Expire, tag invalidation or Clear may take.
	changedAt int64
	// outcome, set by WithOutcome, is filled in by GetOrSet and Get.
	outcome *Outcome
	// failSafeDefault, set by WithFailSafeDefault, is what GetOrSet returns
	// with fail-safe on when the factory fails and no stale value exists.
	failSafeDefault *any
}

// DefaultEntryOptions returns the defaults: Duration 30s, fail-safe off with
// FailSafeMaxDuration 24h and FailSafeThrottleDuration 30s, no timeouts,
// BackgroundFactoryCompletion on, no eager refresh.
func DefaultEntryOptions() EntryOptions {
	return EntryOptions{
		Duration:                    DefaultDuration,
		FailSafeMaxDuration:         DefaultFailSafeMaxDuration,
		FailSafeThrottleDuration:    DefaultFailSafeThrottleDuration,
		BackgroundFactoryCompletion: true,
	}
}

// validate reports the first invalid field, prefixed by where.
func (o *EntryOptions) validate(where string) error {
	if o.Duration <= 0 {
		return &OptionError{Field: where + "Duration", Value: o.Duration, Why: "must be > 0"}
	}
	// A negative duration sets the sign bit of the OR of them all: the
	// common case (every run of a factory checks its options) needs no
	// table of names.
	if o.L1Duration|o.L2Duration|o.Jitter|o.SlidingExpiration|o.FailSafeMaxDuration|o.FailSafeThrottleDuration|
		o.FactorySoftTimeout|o.FactoryHardTimeout|o.L2SoftTimeout|o.L2HardTimeout|o.LockTimeout|
		o.L2FailSafeMaxDuration|o.DistributedLockTimeout < 0 {
		if err := o.negativeDuration(where); err != nil {
			return err
		}
	}
	if o.FailSafe && o.FailSafeThrottleDuration <= 0 {
		return &OptionError{Field: where + "FailSafeThrottleDuration", Value: o.FailSafeThrottleDuration, Why: "must be > 0 with FailSafe"}
	}
	if !validThreshold(o.EagerRefreshThreshold) {
		return &OptionError{Field: where + "EagerRefreshThreshold", Value: o.EagerRefreshThreshold, Why: "must be 0 or in (0, 1)"}
	}
	for i, t := range o.Tags {
		if t == "" {
			return &OptionError{Field: where + "Tags", Value: i, Why: "must not hold an empty tag; empty tag at index"}
		}
	}
	return nil
}

// negativeDuration reports the first negative duration of o (other than
// Duration), prefixed by where.
func (o *EntryOptions) negativeDuration(where string) error {
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"L1Duration", o.L1Duration}, {"L2Duration", o.L2Duration}, {"Jitter", o.Jitter}, {"SlidingExpiration", o.SlidingExpiration},
		{"FailSafeMaxDuration", o.FailSafeMaxDuration}, {"FailSafeThrottleDuration", o.FailSafeThrottleDuration},
		{"FactorySoftTimeout", o.FactorySoftTimeout}, {"FactoryHardTimeout", o.FactoryHardTimeout},
		{"L2SoftTimeout", o.L2SoftTimeout}, {"L2HardTimeout", o.L2HardTimeout}, {"LockTimeout", o.LockTimeout},
		{"L2FailSafeMaxDuration", o.L2FailSafeMaxDuration}, {"DistributedLockTimeout", o.DistributedLockTimeout},
	}
	for _, d := range durations {
		if d.d < 0 {
			return &OptionError{Field: where + d.name, Value: d.d, Why: "must not be negative"}
		}
	}
	return nil
}

// clamp caps every duration of o at MaxDuration, so that adding one to a
// time cannot overflow.
func (o *EntryOptions) clamp() {
	if max(o.Duration, o.L1Duration, o.L2Duration, o.Jitter, o.FailSafeMaxDuration, o.FailSafeThrottleDuration,
		o.FactorySoftTimeout, o.FactoryHardTimeout, o.L2SoftTimeout, o.L2HardTimeout, o.LockTimeout,
		o.L2FailSafeMaxDuration, o.DistributedLockTimeout, o.SlidingExpiration) <= MaxDuration {
		return // the common case
	}
	for _, d := range []*time.Duration{
		&o.Duration, &o.L1Duration, &o.L2Duration, &o.Jitter, &o.FailSafeMaxDuration, &o.FailSafeThrottleDuration,
		&o.FactorySoftTimeout, &o.FactoryHardTimeout, &o.L2SoftTimeout, &o.L2HardTimeout, &o.LockTimeout,
		&o.L2FailSafeMaxDuration, &o.DistributedLockTimeout, &o.SlidingExpiration,
	} {
		*d = min(*d, MaxDuration)
	}
}

func validThreshold(f float64) bool { return f == 0 || (f > 0 && f < 1) }

// resolved returns the options' values as core uses them: the L1 duration
// (with jitter applied by the caller), the physical lifetime of the entry.
func (o *EntryOptions) l1Duration() time.Duration {
	if o.L1Duration > 0 {
		return o.L1Duration
	}
	return o.Duration
}
