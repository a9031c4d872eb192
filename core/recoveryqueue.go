package core

import (
	"slices"
	"sync"
	"sync/atomic"
)

// recoveryQueue is auto-recovery's queue: one item per slot (the latest
// wins), bounded in items and bytes.
type recoveryQueue struct {
	mu    sync.Mutex
	max   int
	items map[string]*recoveryItem
	order []string // slots, oldest first (may hold stale names)
	// maxBytes bounds bytes, the sum of the queued items' values.
	maxBytes, bytes int64
	dropped         uint64
	// extraDropped counts the items dropped beyond the first by one add
	// (the caller counts that one): Stats adds them to RecoveryDropped.
	extraDropped atomic.Uint64
	// inflight counts items taken by a replay and not yet done.
	inflight int
	kick     chan struct{}
}

// recoveryMaxBytes is the byte bound of the recovery queue of a cache whose
// longest L2 entry is maxValue bytes: room for four of them (64 MiB with
// DefaultMaxL2ValueSize), so an entry that fits L2 always fits the queue.
func recoveryMaxBytes(maxValue int) int64 { return 4 * int64(maxValue) }

func newRecoveryQueue(max int) *recoveryQueue {
	return &recoveryQueue{
		max: max, maxBytes: recoveryMaxBytes(DefaultMaxL2ValueSize),
		items: make(map[string]*recoveryItem), kick: make(chan struct{}, 1),
	}
}

// add queues it, replacing an older item in the same slot, then drops the
// oldest items (never it) while the queue holds more than max items or
// maxBytes bytes. It reports false when it dropped an item.
func (q *recoveryQueue) add(it *recoveryItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	slot := it.slot()
	if old, ok := q.items[slot]; ok {
		if old.at > it.at {
			return true // a newer change is already queued
		}
		q.bytes += int64(len(it.value)) - int64(len(old.value))
		q.items[slot] = it
	} else {
		q.items[slot] = it
		q.order = append(q.order, slot)
		q.bytes += int64(len(it.value))
	}
	dropped := 0
	for (len(q.items) > q.max || q.bytes > q.maxBytes) && q.dropOldestLocked(slot) {
		dropped++
	}
	if dropped > 1 {
		q.extraDropped.Add(uint64(dropped - 1))
	}
	return dropped == 0
}

// dropOldestLocked drops the oldest item but the one in slot keep, and
// reports whether there was one.
func (q *recoveryQueue) dropOldestLocked(keep string) bool {
	for i := 0; i < len(q.order); {
		slot := q.order[i]
		it, ok := q.items[slot]
		switch {
		case !ok: // a stale name
			q.order = slices.Delete(q.order, i, i+1)
		case slot == keep:
			i++
		default:
			q.order = slices.Delete(q.order, i, i+1)
			delete(q.items, slot)
			q.bytes -= int64(len(it.value))
			q.dropped++
			return true
		}
	}
	return false
}

// extra returns the drops add did not report (0 for a nil queue).
func (q *recoveryQueue) extra() uint64 {
	if q == nil {
		return 0
	}
	return q.extraDropped.Load()
}

// supersede drops the items about key older than at: another node changed
// key after them.
func (q *recoveryQueue) supersede(key string, at int64) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for slot, it := range q.items {
		if it.key == key && it.at < at && it.keyLevel() {
			delete(q.items, slot)
			q.bytes -= int64(len(it.value))
		}
	}
}

// take returns the queued items, oldest first, and empties the queue.
func (q *recoveryQueue) take() []*recoveryItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*recoveryItem
	for _, slot := range q.order {
		if it, ok := q.items[slot]; ok {
			out = append(out, it)
			delete(q.items, slot)
		}
	}
	q.order = q.order[:0]
	q.bytes = 0
	q.inflight += len(out)
	return out
}

// done marks n taken items as handled (replayed, or queued again).
func (q *recoveryQueue) done(n int) {
	q.mu.Lock()
	q.inflight -= n
	q.mu.Unlock()
}

// len counts the items waiting, including those a replay is working on.
func (q *recoveryQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.inflight
}

// A nil queue (auto-recovery off) ignores supersede and wake.

// wake asks the replay loop to try now (a component came back).
func (q *recoveryQueue) wake() {
	if q == nil {
		return
	}
	select {
	case q.kick <- struct{}{}:
	default:
	}
}
