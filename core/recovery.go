package core

import (
	"context"
	"sync"
	"time"

	"github.com/stratacache/strata/backplane"
)

// Auto-recovery. An L2 write or delete, or a backplane publish, that fails is
// queued and replayed when the component is back, so a node that lost its
// connection for a while does not leave L2 or the other nodes behind. The
// queue keeps one item per key and kind (the latest wins), is bounded in
// items and in bytes (the oldest item is dropped, and counted, when it is
// full), and drops an item when a newer change of the same key arrives from
// another node. A write the store refuses for good (l2.ErrPermanent) is
// not queued: it would fail the same way every time.

type recoveryKind uint8

const (
	recoverL2Set recoveryKind = iota + 1
	recoverL2Delete
	recoverPublish
)

type recoveryItem struct {
	kind recoveryKind
	// key is the cache key (or tag) the item is about.
	key string
	// at is when the change was made (its version).
	at int64
	// L2 writes. marker: a tag or Clear time, not a cache key's entry.
	marker   bool
	storeKey string
	value    []byte
	ttl      time.Duration
	// Publishes.
	action backplane.Action
}

// keyLevel reports whether the item is about one cache key (not a tag or a
// clear).
func (it *recoveryItem) keyLevel() bool {
	switch it.kind {
	case recoverL2Set, recoverL2Delete:
		return !it.marker
	}
	return it.action == backplane.ActionSet || it.action == backplane.ActionRemove || it.action == backplane.ActionExpire
}

// slot names the queue slot of an item: L2 writes and deletes of one store
// key share one, as do the key-level publishes of one key.
func (it *recoveryItem) slot() string {
	switch it.kind {
	case recoverL2Set, recoverL2Delete:
		return "l2\x00" + it.storeKey
	}
	switch it.action {
	case backplane.ActionSet, backplane.ActionRemove, backplane.ActionExpire:
		return "bp\x00k\x00" + it.key
	}
	return "bp\x00" + it.action.String() + "\x00" + it.key
}

// recovery is auto-recovery: the queue of failed L2 writes and publishes,
// and the loop that replays them against the two sides. With auto-recovery
// off its queue is nil: what would be queued is dropped and counted.
type recovery struct {
	*env
	q *recoveryQueue
	// The sides replayed against (nil: none), and the L2 timeout of a
	// replayed write.
	l2        *l2side
	co        *coherence
	l2Timeout time.Duration
	delay     time.Duration
}

// newRecovery returns the auto-recovery of a cache (its queue nil when off).
func newRecovery(cfg *config, v *env) *recovery {
	r := &recovery{env: v, delay: cfg.recoveryDelay, l2Timeout: cfg.defaults.L2HardTimeout}
	if cfg.recoveryMaxItems > 0 {
		r.q = newRecoveryQueue(cfg.recoveryMaxItems)
		r.q.maxBytes = recoveryMaxBytes(cfg.maxL2ValueSize)
	}
	return r
}

// start starts the replay loop with goBackground, until ctx ends.
func (r *recovery) start(ctx context.Context, goBackground func(func()) bool) {
	if r.q != nil {
		goBackground(func() { r.loop(ctx, r.delay) })
	}
}

// flush tries once, within d, to replay what the queue holds: Close calls it
// before it stops, since what is still queued then is lost with the process
// (a node that closed with a write to L2 queued would leave the other nodes
// serving what that write replaced, with nothing left to tell them).
func (r *recovery) flush(d time.Duration) {
	if r.q == nil || r.q.len() == 0 || d <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r.replay(ctx)
}

// queue hands an item to auto-recovery (or drops it, counted, when recovery
// is off).
func (r *recovery) queue(it *recoveryItem) {
	if r.q == nil {
		r.stats.recoveryDropped.Add(1)
		return
	}
	if !r.q.add(it) {
		r.stats.recoveryDropped.Add(1)
		r.logger.Warn("strata: auto-recovery queue full (items or bytes): oldest items dropped", "max_items", r.q.max, "max_bytes", r.q.maxBytes)
	}
}

// wake asks the replay loop to try now (a component came back).
func (r *recovery) wake() { r.q.wake() }

// supersede drops the queued items about key older than at: another node
// changed key after them.
func (r *recovery) supersede(key string, at int64) { r.q.supersede(key, at) }

// loop replays the queue every delay, or at once when woken, until
// ctx ends. After a wake (a breaker closed, the backplane reconnected), a
// replay that still fails is retried sooner than delay — 50 ms, doubling
// up to delay — since the component is coming back and its client may
// need a moment (a redial) to follow.
func (r *recovery) loop(ctx context.Context, delay time.Duration) {
	const fastStart = 50 * time.Millisecond
	t := time.NewTimer(delay)
	defer t.Stop()
	next := delay
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.q.kick:
			next = min(fastStart, delay)
		}
		if r.replay(ctx) && next < delay {
			next = min(2*next, delay)
		} else {
			next = delay
		}
		t.Stop()
		t.Reset(next)
	}
}

// replayWorkers bounds the L2 writes a replay makes at once.
const replayWorkers = 8

// replay retries the queued items: the L2 writes first (replayWorkers at a
// time: they are about distinct keys, and conditional), then the publishes
// in order, so that a node told of a change finds it in L2. An item that
// fails again is queued again (unless something newer took its slot
// meanwhile); after a failure of L2, or of the backplane, the remaining
// items of that kind are queued again without being tried, so that a dead
// server is not called once per item. It reports whether anything failed.
func (r *recovery) replay(ctx context.Context) (failed bool) {
	items := r.q.take()
	if len(items) == 0 {
		return false
	}
	var (
		mu             sync.Mutex
		ok             int
		l2Down, bpDown bool
		wg             sync.WaitGroup
		sem            = make(chan struct{}, replayWorkers)
		// told: the newest version of each key a queued publish of this
		// round announces (sent after the L2 writes): an L2 write it
		// covers needs no announcement of its own.
		told = make(map[string]int64)
	)
	for _, it := range items {
		if it.kind == recoverPublish && it.keyLevel() {
			told[it.key] = max(told[it.key], it.at)
		}
	}
	requeue := func(it *recoveryItem, l2 bool) {
		r.q.add(it)
		r.q.done(1)
		mu.Lock()
		failed = true
		if l2 {
			l2Down = true
		} else {
			bpDown = true
		}
		mu.Unlock()
	}
	for _, it := range items {
		if it.kind == recoverPublish {
			continue
		}
		mu.Lock()
		down := l2Down
		mu.Unlock()
		if down {
			requeue(it, true)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			if it.kind == recoverL2Set {
				err = r.l2.put(ctx, it.key, it.storeKey, it.value, it.ttl, it.at, r.l2Timeout)
			} else {
				err = r.l2.del(ctx, it.key, it.storeKey, r.l2Timeout)
			}
			if retryable(err) {
				requeue(it, true)
				return
			}
			if err != nil { // refused for good (reported by l2Put): dropped
				r.q.done(1)
				return
			}
			if it.kind == recoverL2Set && !it.marker && r.co != nil && told[it.key] < it.at {
				// Announce the value now in L2: a node that re-read the
				// old one meanwhile (after missing the first message)
				// drops it.
				r.co.publish(ctx, backplane.ActionSet, it.key, it.at, nil, &EntryOptions{BackgroundBackplane: true})
			}
			r.q.done(1)
			mu.Lock()
			ok++
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, it := range items {
		if it.kind != recoverPublish {
			continue
		}
		if bpDown || r.co.sendNow(ctx, &outMsg{action: it.action, key: it.key, at: it.at}) != nil {
			requeue(it, false)
			continue
		}
		r.q.done(1)
		ok++
	}
	if ok > 0 {
		r.logger.InfoContext(ctx, "strata: auto-recovery replayed queued writes", "replayed", ok, "left", r.q.len())
	}
	return failed
}
