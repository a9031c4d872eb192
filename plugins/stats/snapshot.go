package stats

import (
	"fmt"
	"time"

	"github.com/stratacache/strata/core"
)

// Health statuses of a Snapshot.
const (
	// StatusOK: the cache runs and its distributed parts are healthy.
	StatusOK = "ok"
	// StatusDegraded: the cache answers, but its backplane is
	// disconnected or writes wait for auto-recovery (see Problems).
	StatusDegraded = "degraded"
	// StatusStopped: the cache is closed.
	StatusStopped = "stopped"
	// StatusNotStarted: the plugin is not installed in a cache (yet).
	StatusNotStarted = "not_started"
)

// Snapshot is what a Plugin counted since its cache started, with the
// cache's own state. Counts only grow.
type Snapshot struct {
	// Cache and InstanceID name the cache and this node.
	Cache      string `json:"cache"`
	InstanceID string `json:"instance_id"`
	// Status is StatusOK, StatusDegraded, StatusStopped or
	// StatusNotStarted; Problems says why it is not ok.
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
	// Since is when the cache started; Uptime how long ago that was.
	Since  time.Time `json:"since"`
	Uptime string    `json:"uptime"`

	// Hits counts values returned fresh from L1 or L2, StaleHits stale
	// values served (fail-safe, AllowStaleOnRead), Misses lookups that
	// found no usable value. HitRatio is Hits / (Hits + StaleHits +
	// Misses), 0 before any lookup.
	Hits      uint64  `json:"hits"`
	StaleHits uint64  `json:"stale_hits"`
	Misses    uint64  `json:"misses"`
	HitRatio  float64 `json:"hit_ratio"`

	// FailSafeActivations counts stale values served because the factory
	// failed or timed out.
	FailSafeActivations uint64 `json:"failsafe_activations"`
	// FactoryErrors counts factory calls that returned an error or
	// panicked.
	FactoryErrors uint64 `json:"factory_errors"`
	// FactorySoftTimeouts and FactoryHardTimeouts count callers that
	// stopped waiting for a factory; BackgroundCompletions factories that
	// finished after their callers left.
	FactorySoftTimeouts   uint64 `json:"factory_soft_timeouts"`
	FactoryHardTimeouts   uint64 `json:"factory_hard_timeouts"`
	BackgroundCompletions uint64 `json:"background_completions"`
	// EagerRefreshes counts background refreshes started by a hit.
	EagerRefreshes uint64 `json:"eager_refreshes"`
	// LockTimeouts counts callers that stopped waiting for another
	// caller's factory (EntryOptions.LockTimeout).
	LockTimeouts uint64 `json:"lock_timeouts"`
	// NotCachedSuperseded counts factory results not cached because the
	// key changed while the factory ran.
	NotCachedSuperseded uint64 `json:"not_cached_superseded"`

	// L2Errors counts failed or timed-out L2 calls and undecodable L2
	// entries; L2Corrupt the latter alone.
	L2Errors  uint64 `json:"l2_errors"`
	L2Corrupt uint64 `json:"l2_corrupt"`
	// SerializationErrors counts values that could not be serialized for
	// L2.
	SerializationErrors uint64 `json:"serialization_errors"`

	// BackplaneSent counts messages published, BackplaneSendErrors
	// publishes that failed, BackplaneReceived messages applied from other
	// nodes, BackplaneLosses the times this node expired its L1 because it
	// may have missed messages.
	BackplaneSent       uint64 `json:"backplane_sent"`
	BackplaneSendErrors uint64 `json:"backplane_send_errors"`
	BackplaneReceived   uint64 `json:"backplane_received"`
	BackplaneLosses     uint64 `json:"backplane_losses"`
	// BackplaneCorrupt counts messages dropped as undecodable (garbage,
	// truncated, another wire version); BackplaneRejected, with signing
	// on, messages dropped for a missing or bad signature (a spoofing
	// attempt, or a node with other keys).
	BackplaneCorrupt  uint64 `json:"backplane_corrupt"`
	BackplaneRejected uint64 `json:"backplane_rejected"`
	// BackplaneDisconnected reports whether the backplane is down now.
	BackplaneDisconnected bool `json:"backplane_disconnected"`
	// BackplaneBehind counts the times this node's subscription fell
	// behind (its own messages took over half the staleness bound to come
	// back); BackplaneBehindNow reports whether it is behind now.
	BackplaneBehind    uint64 `json:"backplane_behind"`
	BackplaneBehindNow bool   `json:"backplane_behind_now"`

	// RecoveryQueued is the number of L2 writes and publishes waiting for
	// auto-recovery; RecoveryDropped counts the ones given up.
	RecoveryQueued  uint64 `json:"recovery_queued"`
	RecoveryDropped uint64 `json:"recovery_dropped"`

	// CircuitBreakerChanges counts circuit breakers opening and closing.
	CircuitBreakerChanges uint64 `json:"circuit_breaker_changes"`
	// Evictions counts L1 entries evicted by its size bound.
	Evictions uint64 `json:"evictions"`
}

// Snapshot returns the counts so far and the cache's state. It may be
// called at any time, concurrently with the cache's work; counts of events
// happening meanwhile may or may not be included.
func (p *Plugin) Snapshot() Snapshot {
	ev := func(k core.EventKind) uint64 { return p.events[k].v.Load() }
	s := Snapshot{
		Status:                StatusNotStarted,
		Hits:                  p.hits.load(),
		StaleHits:             p.stale.load(),
		Misses:                ev(core.EventMiss),
		FailSafeActivations:   ev(core.EventFailSafeActivated),
		FactoryErrors:         ev(core.EventFactoryError),
		FactorySoftTimeouts:   ev(core.EventFactorySoftTimeout),
		FactoryHardTimeouts:   ev(core.EventFactoryHardTimeout),
		BackgroundCompletions: ev(core.EventBackgroundCompletion),
		EagerRefreshes:        ev(core.EventEagerRefresh),
		LockTimeouts:          ev(core.EventLockTimeout),
		NotCachedSuperseded:   ev(core.EventNotCachedSuperseded),
		L2Errors:              ev(core.EventL2Error),
		SerializationErrors:   ev(core.EventSerializationError),
		BackplaneSent:         ev(core.EventBackplaneSent),
		BackplaneSendErrors:   p.sendErrors.v.Load(),
		BackplaneReceived:     ev(core.EventBackplaneReceived),
		BackplaneLosses:       ev(core.EventBackplaneLoss),
		BackplaneCorrupt:      ev(core.EventBackplaneCorrupt),
		BackplaneRejected:     ev(core.EventBackplaneRejected),
		BackplaneBehind:       ev(core.EventBackplaneBehind),
		CircuitBreakerChanges: ev(core.EventCircuitBreakerChange),
		Evictions:             ev(core.EventEviction),
	}
	if n := s.Hits + s.StaleHits + s.Misses; n > 0 {
		s.HitRatio = float64(s.Hits) / float64(n)
	}
	st := p.state.Load()
	if st == nil {
		s.Problems = []string{"the plugin is not installed in a cache"}
		return s
	}
	cs := st.cache.Stats()
	s.Cache, s.InstanceID = st.name, st.cache.InstanceID()
	s.Since, s.Uptime = st.since, time.Since(st.since).Round(time.Second).String()
	s.L2Corrupt = cs.L2Corrupt
	s.BackplaneDisconnected = cs.Disconnected
	s.BackplaneBehindNow = cs.Behind
	s.RecoveryQueued, s.RecoveryDropped = cs.RecoveryQueued, cs.RecoveryDropped
	switch {
	case st.stopped.Load():
		s.Status = StatusStopped
		s.Problems = []string{"the cache is closed"}
	default:
		s.Status = StatusOK
		if cs.Disconnected {
			s.Problems = append(s.Problems, "the backplane is disconnected: this node may serve values changed elsewhere, up to the staleness bound")
		}
		if cs.Behind {
			s.Problems = append(s.Problems, "the backplane delivers late: this node re-reads entries older than the staleness bound")
		}
		if cs.RecoveryQueued > 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%d L2 writes or publishes wait for auto-recovery", cs.RecoveryQueued))
		}
		if len(s.Problems) > 0 {
			s.Status = StatusDegraded
		}
	}
	return s
}
