package core

import (
	"sync"
	"sync/atomic"
)

// Tag invalidation. RemoveByTag and ExpireByTag record, per tag, the time of
// the latest invalidation; an entry whose creation time is not after one of its
// tags' times is gone (removed) or stale (expired). Clear does the same for
// every entry. Checking an entry's tags on every hit would cost map lookups,
// so the store keeps an epoch, bumped by every invalidation: an entry found
// valid at the current epoch needs no new check.
//
// In L1 the times live in this map, not in the evictable entry cache, so an
// invalidation is never lost to eviction. The map is pruned of times older
// than the longest entry lifetime the cache has used: no entry that old can
// still be alive.
type tagStore struct {
	epoch atomic.Uint64

	// clearRemoved and clearExpired are the times of the latest Clear(false)
	// and Clear(true).
	clearRemoved atomic.Int64
	clearExpired atomic.Int64
	// lossAt is when this node last expired its L1 because it may have
	// missed backplane messages. Unlike the times above it is compared with
	// when an entry was confirmed (read from L2, produced), not its version:
	// an entry read from L2 after the loss is current.
	lossAt atomic.Int64

	mu        sync.RWMutex
	tags      map[string]tagTimes
	pruneSize int
	// knownAt records when the L2 times of a tag (or of Clear, clearTag)
	// were last read (see Cache.tagKnowledgeTTL for how long that stays
	// good). Guarded by mu.
	knownAt map[string]int64
	// knownReset is when knownAt was last reset: a read that began before
	// it does not count.
	knownReset int64

	// prunedBefore is the time before which tag times may have been
	// forgotten: a factory that started before it does not cache its
	// result as fresh, since it cannot be checked.
	prunedBefore atomic.Int64
}

type tagTimes struct {
	removed, expired int64
}

type tagVerdict uint8

const (
	tagsValid tagVerdict = iota
	tagsExpired
	tagsRemoved
)

// clearTag names the Clear times in knownAt. Tags are never empty, so it
// cannot collide.
const clearTag = ""

func newTagStore() *tagStore {
	return &tagStore{tags: make(map[string]tagTimes), knownAt: make(map[string]int64), pruneSize: 1024}
}

// known reports whether tag's L2 times were read within ttl (0: ever since
// the knowledge was last reset).
func (s *tagStore) known(tag string, now, ttl int64) bool {
	s.mu.RLock()
	at, ok := s.knownAt[tag]
	reset := s.knownReset
	s.mu.RUnlock()
	return ok && at > reset && (ttl == 0 || now-at < ttl)
}

// knownSince returns when the L2 times of Clear and of tags were read, the
// oldest of them (0 if one is not known).
func (s *tagStore) knownSince(tags []string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	since := s.knownAt[clearTag]
	for _, t := range tags {
		since = min(since, s.knownAt[t])
	}
	return since
}

// maxKnown bounds knownAt: past it the store forgets what it read (which
// only costs re-reading).
const maxKnown = 1 << 16

func (s *tagStore) markKnown(tag string, now int64) {
	s.mu.Lock()
	if len(s.knownAt) >= maxKnown {
		clear(s.knownAt)
	}
	s.knownAt[tag] = now
	s.mu.Unlock()
}

// resetKnown forgets which tags were read from L2 (after a possible loss of
// backplane messages at now), and the reads under way that began before now.
func (s *tagStore) resetKnown(now int64) {
	s.mu.Lock()
	clear(s.knownAt)
	s.knownReset = max(s.knownReset, now)
	s.mu.Unlock()
}

// check returns what the invalidations say of e, recording a valid result in
// e so the next check at the same epoch is free.
func (s *tagStore) check(e *entry) tagVerdict {
	epoch := s.epoch.Load()
	if e.tagEpoch.Load() == epoch {
		return tagsValid
	}
	v := s.verdict(e)
	if v == tagsValid {
		e.tagEpoch.Store(epoch)
	}
	return v
}

func (s *tagStore) verdict(e *entry) tagVerdict {
	if e.created <= s.clearRemoved.Load() {
		return tagsRemoved
	}
	expired := !e.stale && (e.created <= s.clearExpired.Load() || e.confirmed <= s.lossAt.Load())
	if len(e.tags) > 0 {
		s.mu.RLock()
		for _, t := range e.tags {
			tt, ok := s.tags[t]
			if !ok {
				continue
			}
			if e.created <= tt.removed {
				s.mu.RUnlock()
				return tagsRemoved
			}
			if !e.stale && e.created <= tt.expired {
				expired = true
			}
		}
		s.mu.RUnlock()
	}
	if expired {
		return tagsExpired
	}
	return tagsValid
}

// invalidate records that tag was removed (or expired) at time at. Times
// only move forward.
func (s *tagStore) invalidate(tag string, at int64, remove bool, keepAfter int64) {
	s.mu.Lock()
	tt := s.tags[tag]
	if remove {
		tt.removed = max(tt.removed, at)
	} else {
		tt.expired = max(tt.expired, at)
	}
	s.tags[tag] = tt
	if len(s.tags) >= s.pruneSize {
		s.pruneLocked(keepAfter)
	}
	s.mu.Unlock()
	s.epoch.Add(1)
}

// loss records a possible loss of messages at time at: every entry
// confirmed until then is expired.
func (s *tagStore) loss(at int64) {
	for {
		old := s.lossAt.Load()
		if at <= old || s.lossAt.CompareAndSwap(old, at) {
			break
		}
	}
	s.epoch.Add(1)
}

// clear records a Clear at time at.
func (s *tagStore) clear(at int64, remove bool) {
	t := &s.clearExpired
	if remove {
		t = &s.clearRemoved
	}
	for {
		old := t.Load()
		if at <= old || t.CompareAndSwap(old, at) {
			break
		}
	}
	s.epoch.Add(1)
}

// pruneLocked drops the times no entry of this node's L1 can be older than,
// and sets the next size at which to prune again, so pruning stays amortized
// O(1). A pruned tag is no longer known: an entry read from L2 with it (which
// another node may have written to live longer) makes the node read its
// marker again, instead of taking the tag as never invalidated.
func (s *tagStore) pruneLocked(keepAfter int64) {
	pruned := false
	for t, tt := range s.tags {
		if max(tt.removed, tt.expired) < keepAfter {
			delete(s.tags, t)
			delete(s.knownAt, t)
			pruned = true
		}
	}
	if pruned && keepAfter > s.prunedBefore.Load() {
		s.prunedBefore.Store(keepAfter)
	}
	s.pruneSize = max(1024, 2*len(s.tags))
}

func (s *tagStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tags)
}
