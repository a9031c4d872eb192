package core

import "sync/atomic"

// counters are the cache's own counts of what went wrong (and some of what
// went right) in its distributed parts, readable with Stats.
type counters struct {
	l2Errors              atomic.Uint64
	l2Corrupt             atomic.Uint64
	bpSent                atomic.Uint64
	bpErrors              atomic.Uint64
	bpReceived            atomic.Uint64
	bpCorrupt             atomic.Uint64
	bpRejected            atomic.Uint64
	bpValues              atomic.Uint64
	lossEvents            atomic.Uint64
	recoveryDropped       atomic.Uint64
	serializeErrors       atomic.Uint64
	evictionEventsDropped atomic.Uint64
	behindEvents          atomic.Uint64
}

// Stats is a snapshot of a cache's counters.
type Stats struct {
	// L2Errors counts failed L2 calls (including timeouts; not calls
	// ended by the caller's own context, see l2.Classify).
	L2Errors uint64
	// L2Corrupt counts L2 entries that could not be decoded, and reads of
	// keys holding a value of another type (treated as misses).
	L2Corrupt uint64
	// BackplaneSent and BackplaneErrors count publishes that succeeded and
	// failed.
	BackplaneSent, BackplaneErrors uint64
	// BackplaneReceived counts messages applied from other nodes (once
	// applied: after it moves, a read here sees the change);
	// BackplaneCorrupt the undecodable ones dropped.
	BackplaneReceived, BackplaneCorrupt uint64
	// BackplaneRejected counts messages dropped for a missing or bad
	// signature (with Options.BackplaneSigningKeys).
	BackplaneRejected uint64
	// BackplaneValues counts entries received on the backplane
	// (EntryOptions.ValueOnBackplane) and installed in L1, each an L2 read
	// spared. A message whose entry was not installed invalidated, as a
	// message without one (counted in BackplaneReceived); one whose entry
	// does not decode, or a value that does not decode as the type a read
	// asks for, also counts in BackplaneCorrupt.
	BackplaneValues uint64
	// LossEvents counts the times this node expired its L1 because it may
	// have missed messages (a gap, a reconnection, a transport's drop).
	LossEvents uint64
	// RecoveryQueued is the number of writes waiting for auto-recovery;
	// RecoveryDropped counts the ones dropped (queue full, or recovery off).
	RecoveryQueued, RecoveryDropped uint64
	// SerializationErrors counts entries that could not go to L2 and are
	// cached in L1 only: a value the serializer refuses, an entry that
	// cannot be encoded, or one larger than DefaultMaxL2ValueSize or than
	// the store accepts, or a write the store refuses for good for its key
	// (an error wrapping l2.ErrPermanent, such as l2.ErrValueTooLarge).
	SerializationErrors uint64
	// EvictionEventsDropped counts L1 evictions not told to observers
	// (EventEviction) because they came faster than observers took them.
	EvictionEventsDropped uint64
	// Disconnected reports whether the backplane is down now.
	Disconnected bool
	// Behind reports whether this node's own backplane messages take
	// longer than half Options.BackplaneStalenessBound to come back now
	// (its subscription lags: L1 entries older than the bound are re-read);
	// BehindEvents counts the times it fell behind.
	Behind       bool
	BehindEvents uint64
}

// Stats returns a snapshot of the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		L2Errors:              c.stats.l2Errors.Load(),
		L2Corrupt:             c.stats.l2Corrupt.Load(),
		BackplaneSent:         c.stats.bpSent.Load(),
		BackplaneErrors:       c.stats.bpErrors.Load(),
		BackplaneReceived:     c.stats.bpReceived.Load(),
		BackplaneCorrupt:      c.stats.bpCorrupt.Load(),
		BackplaneRejected:     c.stats.bpRejected.Load(),
		BackplaneValues:       c.stats.bpValues.Load(),
		LossEvents:            c.stats.lossEvents.Load(),
		RecoveryDropped:       c.stats.recoveryDropped.Load() + c.rec.q.extra(),
		SerializationErrors:   c.stats.serializeErrors.Load(),
		EvictionEventsDropped: c.stats.evictionEventsDropped.Load(),
		Disconnected:          c.gate.disconnectedAt.Load() != 0,
		Behind:                c.gate.behindAt.Load() != 0,
		BehindEvents:          c.stats.behindEvents.Load(),
	}
	if c.rec.q != nil {
		s.RecoveryQueued = uint64(c.rec.q.len())
	}
	return s
}
