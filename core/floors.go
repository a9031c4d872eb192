package core

import "sync"

// floors remembers, per key, the version of the latest change of that key
// this node knows about (its own Set, Remove and Expire, and the messages of
// other nodes), so that an entry read from L2 that is older than that change
// is not served as fresh: an L2 write that failed or is still on its way, or a
// slower node's older value, cannot make a node serve what was already
// replaced. Such an entry is stale (fail-safe may still use it).
//
// The map is bounded: past maxFloors keys it forgets about half of them at
// random, which only gives up that protection for those keys.
type floors struct {
	mu sync.Mutex
	m  map[string]int64
}

const maxFloors = 1 << 16

func (fl *floors) raise(key string, version int64) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.m == nil {
		fl.m = make(map[string]int64)
	}
	if len(fl.m) >= maxFloors {
		n := 0
		for k := range fl.m {
			delete(fl.m, k)
			if n++; n >= maxFloors/2 {
				break
			}
		}
	}
	if version > fl.m[key] {
		fl.m[key] = version
	}
}

func (fl *floors) get(key string) int64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.m[key]
}

// clear forgets every floor (after a possible loss of messages the whole L1
// is expired anyway, and L2 reads start over).
func (fl *floors) clear() {
	fl.mu.Lock()
	clear(fl.m)
	fl.mu.Unlock()
}
