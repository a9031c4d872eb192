package core

import (
	"cmp"
	"context"
	"time"
)

// DefaultDistributedLockTTL bounds how long a node holds the distributed
// stampede lock when the factory has no hard timeout.
const DefaultDistributedLockTTL = 10 * time.Second

// distributedLock, for a flight that found nothing in L2, takes the
// distributed lock of its key (Options.DistributedStampedeLock, with an L2
// that is an l2.Locker), so that nodes missing the same key run the factory
// once in total. While another node holds it, this one polls L2 for the
// value that node will write: found, the flight ends with it (done). After
// the lock timeout (EntryOptions.LockTimeout, else the lock's TTL) or on a
// lock error, the flight runs its factory without the lock. Having taken the
// lock, it reads L2 once more: the previous holder may have written the
// value since. The returned
// release (nil if not taken) must be called when the factory's value is in
// L2 or the factory failed: the lock is never held past the factory's end.
func distributedLock[T any](ctx context.Context, c *Cache, f *flight, eo *EntryOptions) (release func(), done bool) {
	ttl := DefaultDistributedLockTTL
	if eo.FactoryHardTimeout > 0 {
		ttl = eo.FactoryHardTimeout + time.Second
	}
	wait := cmp.Or(eo.DistributedLockTimeout, eo.LockTimeout)
	if wait <= 0 {
		wait = ttl
	}
	lockKey := c.l2.keyPrefix + reservedPrefix + "lock:" + f.key
	deadline := time.Now().Add(wait)
	backoff := 5 * time.Millisecond
	for {
		token, ok, err := c.l2.locker.TryLock(ctx, lockKey, ttl)
		if err != nil {
			c.l2.failed(ctx, f.key, "lock", err)
			return nil, false
		}
		if ok {
			release := func() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				if err := c.l2.locker.Unlock(uctx, lockKey, token); err != nil {
					c.l2.failed(ctx, f.key, "unlock", err)
				}
			}
			// The holder before this one may have written the value and
			// released the lock since this flight last read L2 (a slow
			// goroutine can miss a whole factory run): read it once more
			// under the lock.
			if fromL2[T](ctx, c, f, eo) {
				release()
				return nil, true
			}
			return release, false
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
		backoff = min(2*backoff, 100*time.Millisecond)
		if fromL2[T](ctx, c, f, eo) {
			return nil, true
		}
		if time.Now().After(deadline) {
			c.event(ctx, EventLockTimeout, f.key, nil)
			return nil, false
		}
	}
}
