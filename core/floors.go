package core

import "sync"

// floors remembers, per key, the version of the latest change of that key
// this node knows about (its own Set, Remove and Expire, and the messages of
// other nodes), so that an entry read from L2 that is older than that change
// is not served as fresh: an L2 write that failed or is still on its way, or a
// slower node's older value, cannot make a node serve what was already
// replaced. Such an entry is stale (fail-safe may still use it). With or
// without L2, fail-safe reads them too: a value older than a known Remove is
// never served, and one older than a known Set is not re-cached.
//
// The map is bounded by about as many keys as L1 holds entries (between
// minFloors and maxFloors): past that it forgets about half of them at
// random, which only gives up that protection for those keys. So the state
// a cache keeps per key stays in proportion to its L1, however many distinct
// keys pass through it.
type floors struct {
	mu  sync.Mutex
	m   map[string]floor
	max int // 0: maxFloors
	// forgot is the latest version of the floors forgotten so far: a key
	// without a floor may have had one up to it.
	forgot int64
}

// floor is what a node knows of a key's latest changes: the latest version
// of any change, of a Set (a newer value exists: fail-safe does not re-cache
// an older one), and of a Remove (after which not even fail-safe may serve
// an older entry).
type floor struct{ version, set, removed int64 }

// What a change did to a key, for its floor.
type floorKind uint8

const (
	floorExpire floorKind = iota // expired (or an unknown change: a tombstone)
	floorSet
	floorRemove
)

const (
	minFloors = 1 << 10
	maxFloors = 1 << 16
)

// floorsFor returns the floor bound of an L1 of l1MaxEntries entries (0 for
// an L1 bounded by weight).
func floorsFor(l1MaxEntries int) int {
	if l1MaxEntries <= 0 {
		return maxFloors
	}
	return min(max(l1MaxEntries, minFloors), maxFloors)
}

// raise records a change of key at version (a Remove if removal).
func (fl *floors) raise(key string, version int64, kind floorKind) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.m == nil {
		fl.m = make(map[string]floor)
	}
	limit := fl.max
	if limit == 0 {
		limit = maxFloors
	}
	if len(fl.m) >= limit {
		n := 0
		for k, f := range fl.m {
			fl.forgot = max(fl.forgot, f.version)
			delete(fl.m, k)
			if n++; n >= limit/2 {
				break
			}
		}
	}
	f := fl.m[key]
	f.version = max(f.version, version)
	switch kind {
	case floorSet:
		f.set = max(f.set, version)
	case floorRemove:
		f.removed = max(f.removed, version)
	}
	fl.m[key] = f
}

// forgotten returns the latest version of the floors forgotten so far (0:
// none): a change of any key up to it may have been forgotten.
func (fl *floors) forgotten() int64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.forgot
}

func (fl *floors) get(key string) floor {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.m[key]
}
