package core

import (
	"time"
	"unsafe"
)

// Outcome tells where the value of one GetOrSet or Get call came from. Ask
// for it with WithOutcome; a call that is not asked fills nothing in and
// costs nothing more.
type Outcome struct {
	// Source is where the value came from: SourceL1, SourceL2 or
	// SourceFactory (a run this call started or joined); SourceNone on a
	// miss of Get or an error.
	Source Source
	// Hit: the value was cached (L1 or L2); no factory ran for this call.
	Hit bool
	// Stale: the value is stale (fail-safe served it, or Get with
	// WithAllowStaleOnRead returned it).
	Stale bool
	// FailSafe: fail-safe served the stale value because the factory
	// failed or timed out, or a fail-safe default value was returned.
	FailSafe bool
	// Version is the value's version: when the change that made it was
	// stamped (a Set, or the start of the factory run that produced it), on
	// the clock of the node that made it. Zero without a value.
	Version time.Time
	// Age is how long before the call returned that was, on this node's
	// clock (0 without a value).
	Age time.Duration
}

// WithOutcome makes a GetOrSet or Get call fill in *o with where its value
// came from. Other calls ignore it. o must not be nil; the call writes *o
// before it returns, on the caller's goroutine.
func WithOutcome(o *Outcome) EntryOption {
	if o == nil {
		return badOption("WithOutcome", nil, "must not be nil")
	}
	return EntryOption{kind: optOutcome, p: unsafe.Pointer(o)}
}

// fill records a value of version from source.
func (o *Outcome) fill(source Source, hit, stale, failSafe bool, version, now int64) {
	if o == nil {
		return
	}
	*o = Outcome{Source: source, Hit: hit, Stale: stale, FailSafe: failSafe}
	if version != 0 {
		o.Version = time.Unix(0, version)
		o.Age = time.Duration(max(now-version, 0))
	}
}
