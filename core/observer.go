package core

import (
	"context"
	"time"
)

// Operation names what an Observer is told about.
type Operation uint8

// The public operations, then the steps inside them that spend time outside
// the process or in user code.
const (
	OpGetOrSet Operation = iota + 1
	OpGet
	OpSet
	OpRemove
	OpExpire
	OpRemoveByTag
	OpExpireByTag
	OpClear
	OpFactory
	OpL2Get
	OpL2Set
	OpL2Delete
	OpBackplanePublish
	OpBackplaneReceive
)

var opNames = [...]string{
	OpGetOrSet: "get_or_set", OpGet: "get", OpSet: "set", OpRemove: "remove", OpExpire: "expire",
	OpRemoveByTag: "remove_by_tag", OpExpireByTag: "expire_by_tag", OpClear: "clear",
	OpFactory: "factory", OpL2Get: "l2.get", OpL2Set: "l2.set", OpL2Delete: "l2.delete",
	OpBackplanePublish: "backplane.publish", OpBackplaneReceive: "backplane.receive",
}

// String returns the operation's short name, such as "get_or_set".
func (o Operation) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "unknown"
}

// Source says where a returned value came from.
type Source uint8

// Sources of a value.
const (
	SourceNone Source = iota
	SourceL1
	SourceL2
	SourceFactory
)

func (s Source) String() string {
	switch s {
	case SourceL1:
		return "l1"
	case SourceL2:
		return "l2"
	case SourceFactory:
		return "factory"
	}
	return "none"
}

// OpInfo describes one operation to observers. Core fills the outcome fields
// before OpEnd; observers must not keep the pointer after OpEnd returns.
type OpInfo struct {
	Op    Operation
	Cache string
	// Key is the key, the tag for tag operations, empty for Clear.
	Key string
	// Background is true for a factory no caller waits for from its start
	// (an eager refresh). The context passed to OpStart then carries the
	// operation that started it. A factory whose callers time out is not
	// marked (it started with them); EventBackgroundCompletion tells.
	Background bool
	// Start is when the operation started.
	Start time.Time
	// Action is the backplane action of a publish or receive ("set",
	// "remove_tag", ...).
	Action string
	// TraceParent, on a backplane receive, is the W3C traceparent of the
	// write on the other node that caused the message (empty if none); on a
	// publish, that of the write that caused it.
	TraceParent string
	// ChangedAt, on a backplane receive, is when the change was made on the
	// other node (its clock): the delivery lag is Start - ChangedAt. For a
	// value produced by a factory it is the factory's start.
	ChangedAt time.Time

	// Outcome, set before OpEnd.
	Hit          bool
	Stale        bool
	Source       Source
	FailSafe     bool
	EagerRefresh bool
	Err          error
}

// EventKind names an event.
type EventKind uint8

// Events core reports to observers.
const (
	EventHit EventKind = iota + 1
	EventMiss
	EventStaleHit
	EventFailSafeActivated
	EventFactoryError
	EventFactorySoftTimeout
	EventFactoryHardTimeout
	EventBackgroundCompletion
	EventEagerRefresh
	EventL2Error
	EventBackplaneSent
	EventBackplaneReceived
	EventCircuitBreakerChange
	EventEviction
	EventLockTimeout
	EventNotCachedSuperseded
	EventBackplaneLoss
	EventSerializationError
	// EventBackplaneCorrupt: a backplane message could not be decoded
	// (garbage, truncated, another wire version) and was dropped. Err,
	// wrapping backplane.ErrCorrupt, says what is wrong and where; Key is
	// empty.
	EventBackplaneCorrupt
	// EventBackplaneRejected: with signing on, a backplane message was
	// dropped because it was unsigned, signed with none of the keys or too
	// long to be signed: a spoofing attempt or a node with other keys. Err,
	// wrapping backplane.ErrBadSignature, says which; Key is empty.
	EventBackplaneRejected
	// EventBackplaneBehind: this node's own backplane messages took longer
	// than half Options.BackplaneStalenessBound to come back (Key
	// "behind", Err says how far behind), or came back in time again (Key
	// "caught_up"). While behind, L1 entries older than the bound are
	// re-read (docs/consistency.md, "Delivery watermark").
	EventBackplaneBehind
)

var eventNames = [...]string{
	EventHit: "hit", EventMiss: "miss", EventStaleHit: "stale_hit", EventFailSafeActivated: "failsafe_activated",
	EventFactoryError: "factory_error", EventFactorySoftTimeout: "factory_soft_timeout",
	EventFactoryHardTimeout: "factory_hard_timeout", EventBackgroundCompletion: "background_completion",
	EventEagerRefresh: "eager_refresh", EventL2Error: "l2_error", EventBackplaneSent: "backplane_sent",
	EventBackplaneReceived: "backplane_received", EventCircuitBreakerChange: "circuit_breaker_change",
	EventEviction: "eviction", EventLockTimeout: "lock_timeout", EventNotCachedSuperseded: "not_cached_superseded",
	EventBackplaneLoss: "backplane_loss", EventSerializationError: "serialization_error",
	EventBackplaneCorrupt: "backplane_corrupt", EventBackplaneRejected: "backplane_rejected",
	EventBackplaneBehind: "backplane_behind",
}

// String returns the event's short name, such as "stale_hit".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing that happened in a cache.
type Event struct {
	Kind  EventKind
	Cache string
	Key   string
	Err   error
}

// Observer is told about every operation and event of a cache. strataotel and
// plugins are built on it. Methods are called concurrently from many
// goroutines and must be fast and never block; a panic in an observer is not
// recovered.
type Observer interface {
	// OpStart is called when op starts; the context it returns is used for
	// the rest of the operation (a tracer puts its span there).
	OpStart(ctx context.Context, op *OpInfo) context.Context
	// OpEnd is called when op ends, with the context OpStart returned.
	OpEnd(ctx context.Context, op *OpInfo)
	// Event is called for each event, with the operation's context.
	Event(ctx context.Context, ev Event)
}

// HitObserver is an optional interface of an Observer that keeps L1 hits
// nearly free. New asks each HitObserver once for a HitRecorder bound to the
// cache; for a hit of GetOrSet, core first asks the recorder's WantsHitOp,
// and when every observer of the cache says false, the hit gets no
// OpStart/OpEnd (no OpInfo, no clock read) and core calls the recorder's Hit
// instead. If any observer of the cache is not a HitObserver, every hit gets
// OpStart/OpEnd. strataotel uses it to give hits a span only inside a
// sampled trace while still counting them.
type HitObserver interface {
	Observer
	// HitRecorder returns the recorder of the hits of the cache named
	// cache. New calls it once per cache, before the cache serves anything.
	HitRecorder(cache string) HitRecorder
}

// HitRecorder is told about the L1 hits of one cache (see HitObserver). Both
// methods are called concurrently on every hit: they must be fast, must not
// block, and must not allocate.
type HitRecorder interface {
	// WantsHitOp reports whether an L1 hit in ctx needs the full
	// OpStart/OpEnd treatment.
	WantsHitOp(ctx context.Context) bool
	// Hit is told about an L1 hit that got no OpStart/OpEnd. stale is
	// true for a stale value re-cached by fail-safe.
	Hit(ctx context.Context, stale bool)
}

// hitRecorders holds the recorders of several HitObservers.
type hitRecorders []HitRecorder

func (hs hitRecorders) WantsHitOp(ctx context.Context) bool {
	for _, h := range hs {
		if h.WantsHitOp(ctx) {
			return true
		}
	}
	return false
}

func (hs hitRecorders) Hit(ctx context.Context, stale bool) {
	for _, h := range hs {
		h.Hit(ctx, stale)
	}
}

// bindHits returns the hit recorder of a cache with observers os: nil when
// there are none or one of them is not a HitObserver.
func bindHits(os observers, cache string) HitRecorder {
	var hs hitRecorders
	for _, ob := range os {
		h, ok := ob.(HitObserver)
		if !ok {
			return nil
		}
		hs = append(hs, h.HitRecorder(cache))
	}
	switch len(hs) {
	case 0:
		return nil
	case 1:
		return hs[0] // one interface call per hit, not a loop
	}
	return hs
}

// observers fans out to several observers; nil means none.
type observers []Observer

func (os observers) start(ctx context.Context, op *OpInfo) context.Context {
	for _, o := range os {
		ctx = o.OpStart(ctx, op)
	}
	return ctx
}

func (os observers) end(ctx context.Context, op *OpInfo) {
	for i := len(os) - 1; i >= 0; i-- {
		os[i].OpEnd(ctx, op)
	}
}

func (os observers) event(ctx context.Context, kind EventKind, cache, key string, err error) {
	for _, o := range os {
		o.Event(ctx, Event{Kind: kind, Cache: cache, Key: key, Err: err})
	}
}
