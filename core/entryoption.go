package core

import (
	"math"
	"slices"
	"time"
	"unsafe"
)

// An EntryOption adjusts the EntryOptions of one call. Make them with the
// With... functions. They are plain values: building and passing them does not
// allocate, so per-call options cost nothing on an L1 hit. An option built from
// an invalid value (a negative duration, a threshold outside (0, 1)) makes the
// call return an *OptionError naming the field.
type EntryOption struct {
	kind optKind
	// d1 and d2 hold durations, a threshold (as float64 bits), a bool, or
	// the length of the tags p points to.
	d1, d2 time.Duration
	// p points to the first tag (optTags), or to a rareOption (optFull,
	// optInvalid). One pointer instead of a slice keeps an option at 32
	// bytes: building options is part of every call, hits included.
	p unsafe.Pointer
}

// rareOption holds what few options need: a full EntryOptions, or the error
// of an option built from an invalid value.
type rareOption struct {
	full *EntryOptions
	err  error
}

func badOption(field string, value any, why string) EntryOption {
	return EntryOption{kind: optInvalid, p: unsafe.Pointer(&rareOption{err: &OptionError{Field: field, Value: value, Why: why}})}
}

func (o *EntryOption) rare() *rareOption { return (*rareOption)(o.p) }

func (o *EntryOption) tags() []string { return unsafe.Slice((*string)(o.p), int(o.d1)) }

type optKind uint8

const (
	optNone optKind = iota
	optDuration
	optL1Duration
	optL2Duration
	optJitter
	optFailSafe
	optNoFailSafe
	optFactoryTimeouts
	optBackgroundCompletion
	optL2Timeouts
	optEagerRefresh
	optTags
	optLockTimeout
	optSkipL1Read
	optSkipL1Write
	optSkipL2Read
	optSkipL2Write
	optSkipBackplane
	optBackgroundL2Writes
	optBackgroundBackplane
	optValueOnBackplane
	optAllowStaleOnRead
	optChangedAt
	optOutcome
	optL2FailSafe
	optDistributedLockTimeout
	optSkipDistributedLock
	optSkipL2ReadWhenStale
	optFailSafeDefault
	optSliding
	optFull
	optInvalid
)

func durationOpt(kind optKind, field string, d time.Duration) EntryOption {
	if d < 0 {
		return badOption(field, d, "must not be negative")
	}
	return EntryOption{kind: kind, d1: d}
}

// WithDuration sets how long the entry is fresh (> 0).
func WithDuration(d time.Duration) EntryOption {
	if d <= 0 {
		return badOption("WithDuration", d, "must be > 0")
	}
	return EntryOption{kind: optDuration, d1: d}
}

// WithL1Duration sets a duration for the in-memory cache only (0: Duration).
func WithL1Duration(d time.Duration) EntryOption {
	return durationOpt(optL1Duration, "WithL1Duration", d)
}

// WithL2Duration sets a duration for the distributed cache only (0: Duration).
func WithL2Duration(d time.Duration) EntryOption {
	return durationOpt(optL2Duration, "WithL2Duration", d)
}

// WithJitter adds a random extra in [0, max) to the L1 duration.
func WithJitter(max time.Duration) EntryOption { return durationOpt(optJitter, "WithJitter", max) }

// WithFailSafe turns fail-safe on: the entry is kept for maxDuration so that a
// failing or slow factory is answered with the stale value, which is then
// reused for throttle before the factory is tried again. A zero duration keeps
// the current setting.
func WithFailSafe(maxDuration, throttle time.Duration) EntryOption {
	switch {
	case maxDuration < 0:
		return badOption("WithFailSafe maxDuration", maxDuration, "must not be negative")
	case throttle < 0:
		return badOption("WithFailSafe throttle", throttle, "must not be negative")
	}
	return EntryOption{kind: optFailSafe, d1: maxDuration, d2: throttle}
}

// WithoutFailSafe turns fail-safe off for this call.
func WithoutFailSafe() EntryOption { return EntryOption{kind: optNoFailSafe} }

// WithFactoryTimeouts sets the factory's soft timeout (used only when a stale
// value can be served) and hard timeout (always). 0 means none.
func WithFactoryTimeouts(soft, hard time.Duration) EntryOption {
	switch {
	case soft < 0:
		return badOption("WithFactoryTimeouts soft", soft, "must not be negative")
	case hard < 0:
		return badOption("WithFactoryTimeouts hard", hard, "must not be negative")
	}
	return EntryOption{kind: optFactoryTimeouts, d1: soft, d2: hard}
}

// WithBackgroundFactoryCompletion sets whether a timed-out factory may finish
// in the background and cache its result.
func WithBackgroundFactoryCompletion(on bool) EntryOption {
	return EntryOption{kind: optBackgroundCompletion, d1: boolDuration(on)}
}

// WithL2Timeouts sets the soft and hard timeouts of L2 operations.
func WithL2Timeouts(soft, hard time.Duration) EntryOption {
	switch {
	case soft < 0:
		return badOption("WithL2Timeouts soft", soft, "must not be negative")
	case hard < 0:
		return badOption("WithL2Timeouts hard", hard, "must not be negative")
	}
	return EntryOption{kind: optL2Timeouts, d1: soft, d2: hard}
}

// WithEagerRefresh makes the first hit after threshold x Duration start one
// background refresh; threshold must be in (0, 1), or 0 to turn it off.
func WithEagerRefresh(threshold float64) EntryOption {
	if !validThreshold(threshold) {
		return badOption("WithEagerRefresh", threshold, "must be 0 or in (0, 1)")
	}
	return EntryOption{kind: optEagerRefresh, d1: time.Duration(math.Float64bits(threshold))}
}

// WithTags labels the entry for RemoveByTag and ExpireByTag. Tags must not be
// empty.
func WithTags(tags ...string) EntryOption {
	if slices.Contains(tags, "") {
		return badOption("WithTags", `""`, "must not hold an empty tag")
	}
	return EntryOption{kind: optTags, d1: time.Duration(len(tags)), p: unsafe.Pointer(unsafe.SliceData(tags))}
}

// WithLockTimeout bounds how long a caller waits for another caller's
// factory on the same key.
func WithLockTimeout(d time.Duration) EntryOption {
	return durationOpt(optLockTimeout, "WithLockTimeout", d)
}

// WithSkipL1Read makes the call ignore the in-memory cache when reading.
func WithSkipL1Read() EntryOption { return EntryOption{kind: optSkipL1Read} }

// WithSkipL1Write makes the call not store in the in-memory cache.
func WithSkipL1Write() EntryOption { return EntryOption{kind: optSkipL1Write} }

// WithSkipL2Read makes the call ignore the distributed cache when reading.
func WithSkipL2Read() EntryOption { return EntryOption{kind: optSkipL2Read} }

// WithSkipL2Write makes the call not store in the distributed cache.
func WithSkipL2Write() EntryOption { return EntryOption{kind: optSkipL2Write} }

// WithSkipBackplane makes the call not tell other nodes.
func WithSkipBackplane() EntryOption { return EntryOption{kind: optSkipBackplane} }

// WithBackgroundL2Writes makes the call return before its L2 write is done.
func WithBackgroundL2Writes() EntryOption { return EntryOption{kind: optBackgroundL2Writes} }

// WithValueOnBackplane sets EntryOptions.ValueOnBackplane for the call: with
// on, the message of this Set or factory result carries the new entry, so
// that the other nodes install it without reading L2.
func WithValueOnBackplane(on bool) EntryOption {
	return EntryOption{kind: optValueOnBackplane, d1: boolDuration(on)}
}

// WithBackgroundBackplane makes the call return before its backplane
// publish is done.
func WithBackgroundBackplane() EntryOption { return EntryOption{kind: optBackgroundBackplane} }

// WithAllowStaleOnRead lets Get return a stale (fail-safe) value.
func WithAllowStaleOnRead() EntryOption { return EntryOption{kind: optAllowStaleOnRead} }

// WithSlidingExpiration keeps the entry fresh in L1 only while it is read at
// least every d (and never past its duration): IMemoryCache's sliding
// expiration, per node.
func WithSlidingExpiration(d time.Duration) EntryOption {
	return durationOpt(optSliding, "WithSlidingExpiration", d)
}

// WithL2FailSafeMaxDuration sets how long a fail-safe entry is kept in L2,
// instead of FailSafeMaxDuration (0 keeps FailSafeMaxDuration).
func WithL2FailSafeMaxDuration(d time.Duration) EntryOption {
	return durationOpt(optL2FailSafe, "WithL2FailSafeMaxDuration", d)
}

// WithDistributedLockTimeout bounds how long a run waits for the
// distributed stampede lock, instead of the lock timeout.
func WithDistributedLockTimeout(d time.Duration) EntryOption {
	return durationOpt(optDistributedLockTimeout, "WithDistributedLockTimeout", d)
}

// WithSkipDistributedLock makes the call's run not take the distributed
// stampede lock (the local one still holds).
func WithSkipDistributedLock() EntryOption { return EntryOption{kind: optSkipDistributedLock} }

// WithSkipL2ReadWhenStale makes a call that holds a stale L1 value call the
// factory without reading L2 first.
func WithSkipL2ReadWhenStale() EntryOption { return EntryOption{kind: optSkipL2ReadWhenStale} }

// WithFailSafeDefault makes GetOrSet return v, with fail-safe on, when the
// factory fails or times out and no stale value exists: the caller gets v
// and no error, nothing is cached, and the failure is reported as a
// fail-safe activation. v must be of the call's type, else the call returns
// a *TypeError. GetOrSetMany ignores it.
func WithFailSafeDefault(v any) EntryOption {
	return EntryOption{kind: optFailSafeDefault, p: unsafe.Pointer(&v)}
}

// WithChangedAt states when the change was made at its source, for changes
// that did not start in this process: a database commit read from its change
// log, an operator's command. The change (Set, Remove, Expire, RemoveByTag,
// ExpireByTag, Clear) then takes a version no older than t, so a factory that
// started before t, and may have read the data as it was before the change,
// cannot cache its result over the change, on any node whose clock is not
// ahead of the source's by more than the time between that factory's start
// and t (keep clocks synchronised: docs/consistency.md). The version is this
// node's own when that is later. A t more than an hour ahead of this node's
// clock is an *OptionError: the versions of this node's later changes would
// run that far ahead. It has no effect on reads.
func WithChangedAt(t time.Time) EntryOption {
	if t.IsZero() {
		return badOption("WithChangedAt", t, "must not be the zero time")
	}
	return EntryOption{kind: optChangedAt, d1: time.Duration(t.UnixNano())}
}

// WithEntryOptions replaces every entry option of the call with o (later
// options still adjust it). It copies o; an invalid o makes the call return
// an *OptionError naming the field.
func WithEntryOptions(o EntryOptions) EntryOption {
	cp := o
	cp.Tags = slices.Clone(o.Tags)
	if err := cp.validate("WithEntryOptions."); err != nil {
		return EntryOption{kind: optInvalid, p: unsafe.Pointer(&rareOption{err: err})}
	}
	return EntryOption{kind: optFull, p: unsafe.Pointer(&rareOption{full: &cp})}
}

// scanHit checks the per-call options the way an L1 hit needs them: it
// returns the first construction error and whether L1 reads are skipped. It
// neither allocates nor retains opts.
func scanHit(def bool, opts []EntryOption) (skipL1Read bool, out *Outcome, err error) {
	skipL1Read = def
	for i := range opts {
		o := &opts[i]
		switch o.kind {
		case optSkipL1Read:
			skipL1Read = true
		case optFull:
			skipL1Read = o.rare().full.SkipL1Read
		case optOutcome:
			out = (*Outcome)(o.p)
		case optInvalid:
			return false, nil, o.rare().err
		}
	}
	return skipL1Read, out, nil
}

// apply adjusts eo by opts. Slices are copied, so eo retains nothing of opts.
func apply(eo *EntryOptions, opts []EntryOption) error {
	for i := range opts {
		o := &opts[i]
		switch o.kind {
		case optInvalid:
			return o.rare().err
		case optDuration:
			eo.Duration = o.d1
		case optL1Duration:
			eo.L1Duration = o.d1
		case optL2Duration:
			eo.L2Duration = o.d1
		case optJitter:
			eo.Jitter = o.d1
		case optFailSafe:
			eo.FailSafe = true
			if o.d1 > 0 {
				eo.FailSafeMaxDuration = o.d1
			}
			if o.d2 > 0 {
				eo.FailSafeThrottleDuration = o.d2
			}
		case optNoFailSafe:
			eo.FailSafe = false
		case optFactoryTimeouts:
			eo.FactorySoftTimeout, eo.FactoryHardTimeout = o.d1, o.d2
		case optBackgroundCompletion:
			eo.BackgroundFactoryCompletion = o.d1 != 0
		case optL2Timeouts:
			eo.L2SoftTimeout, eo.L2HardTimeout = o.d1, o.d2
		case optEagerRefresh:
			eo.EagerRefreshThreshold = math.Float64frombits(uint64(o.d1))
		case optTags:
			eo.Tags = slices.Clone(o.tags())
		case optLockTimeout:
			eo.LockTimeout = o.d1
		case optSkipL1Read:
			eo.SkipL1Read = true
		case optSkipL1Write:
			eo.SkipL1Write = true
		case optSkipL2Read:
			eo.SkipL2Read = true
		case optSkipL2Write:
			eo.SkipL2Write = true
		case optSkipBackplane:
			eo.SkipBackplane = true
		case optBackgroundL2Writes:
			eo.BackgroundL2Writes = true
		case optBackgroundBackplane:
			eo.BackgroundBackplane = true
		case optValueOnBackplane:
			eo.ValueOnBackplane = o.d1 != 0
		case optAllowStaleOnRead:
			eo.AllowStaleOnRead = true
		case optChangedAt:
			eo.changedAt = int64(o.d1)
		case optOutcome:
			eo.outcome = (*Outcome)(o.p)
		case optL2FailSafe:
			eo.L2FailSafeMaxDuration = o.d1
		case optDistributedLockTimeout:
			eo.DistributedLockTimeout = o.d1
		case optSkipDistributedLock:
			eo.SkipDistributedLock = true
		case optSkipL2ReadWhenStale:
			eo.SkipL2ReadWhenStale = true
		case optSliding:
			eo.SlidingExpiration = o.d1
		case optFailSafeDefault:
			eo.failSafeDefault = (*any)(o.p)
		case optFull:
			full := o.rare().full
			*eo = *full
			eo.Tags = slices.Clone(full.Tags)
		}
	}
	return nil
}

func boolDuration(b bool) time.Duration {
	if b {
		return 1
	}
	return 0
}
