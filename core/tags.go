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

	mu        sync.RWMutex
	tags      map[string]tagTimes
	pruneSize int
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

func newTagStore() *tagStore {
	return &tagStore{tags: make(map[string]tagTimes), pruneSize: 1024}
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
	expired := !e.stale && e.created <= s.clearExpired.Load()
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

// pruneLocked drops the times no live entry can be older than, and sets the
// next size at which to prune again, so pruning stays amortized O(1).
func (s *tagStore) pruneLocked(keepAfter int64) {
	pruned := false
	for t, tt := range s.tags {
		if max(tt.removed, tt.expired) < keepAfter {
			delete(s.tags, t)
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
