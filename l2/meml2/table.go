package meml2

import (
	"sync"
	"time"
)

// minSweep is the fewest writes between two sweeps of expired entries. A
// sweep comes after max(minSweep, entries left by the last sweep) writes, so
// it visits at most twice as many entries as writes since the last one: O(1)
// per write, and expired entries never outnumber live ones by much.
const minSweep = 64

// table holds the entries of one private store or of one shared name.
type table struct {
	mu      sync.RWMutex
	entries map[string]entry
	writes  int // writes since the last sweep
	swept   int // entries left by the last sweep

	refs int // open handles on a shared table; guarded by sharedMu
}

type entry struct {
	value     []byte // never nil for a present entry
	expires   int64  // Unix ns
	version   int64
	versioned bool // stored by SetIfNewer
	wrongType bool // a value of another type (SetWrongType): no bytes to read
}

func newTable() *table {
	return &table{entries: make(map[string]entry)}
}

// get returns a copy of key's value; wrongType reports a live entry of
// another type, which has none.
func (t *table) get(key string, now time.Time) (value []byte, found, wrongType bool) {
	t.mu.RLock()
	e, ok := t.entries[key]
	t.mu.RUnlock()
	if !ok || e.expires <= now.UnixNano() {
		return nil, false, false
	}
	if e.wrongType {
		return nil, false, true
	}
	return clone(e.value), true, false
}

func (t *table) getMany(keys []string, now time.Time) ([][]byte, int) {
	vals := make([][]byte, len(keys))
	hits := 0
	n := now.UnixNano()
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, k := range keys {
		if e, ok := t.entries[k]; ok && e.expires > n && !e.wrongType {
			vals[i] = clone(e.value)
			hits++
		}
	}
	return vals, hits
}

// set stores value under key. When conditional, it stores only over a
// missing, expired or unversioned entry or one with a lower version, and
// reports whether it stored.
func (t *table) set(key string, value []byte, ttl time.Duration, version int64, conditional bool, now time.Time) bool {
	n := now.UnixNano()
	v := clone(value) // outside the lock
	t.mu.Lock()
	defer t.mu.Unlock()
	if conditional {
		if old, ok := t.entries[key]; ok && old.expires > n && old.versioned && old.version >= version {
			return false
		}
	}
	t.put(key, entry{value: v, expires: expiry(n, ttl), version: version, versioned: conditional}, n)
	return true
}

// setWrongType makes key hold a value of another type until ttl passes.
func (t *table) setWrongType(key string, ttl time.Duration, now time.Time) {
	n := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.put(key, entry{value: []byte{}, expires: expiry(n, ttl), wrongType: true}, n)
}

// expiry returns when an entry written at n with ttl expires.
func expiry(n int64, ttl time.Duration) int64 {
	expires := n + int64(ttl)
	if expires < n { // overflow: a ttl beyond the year 2262
		expires = 1<<63 - 1
	}
	return expires
}

// put stores e under key at n, sweeping expired entries now and then. The
// caller holds t.mu.
func (t *table) put(key string, e entry, n int64) {
	t.entries[key] = e
	t.writes++
	if t.writes >= max(minSweep, t.swept) {
		for k, e := range t.entries {
			if e.expires <= n {
				delete(t.entries, k)
			}
		}
		t.writes, t.swept = 0, len(t.entries)
	}
}

func (t *table) delete(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// clone returns a copy of b that is never nil, so that an empty value reads
// back as found and non-nil.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// Shared tables, by name: the only global state of the package besides its
// registration with l2.
var (
	sharedMu sync.Mutex
	shared   = make(map[string]*table)
)

// acquire returns the shared table called name, making it if needed, and
// counts one more handle on it.
func acquire(name string) *table {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	t := shared[name]
	if t == nil {
		t = newTable()
		shared[name] = t
	}
	t.refs++
	return t
}

// release counts one handle less on t and forgets t with its last handle.
func release(name string, t *table) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	t.refs--
	if t.refs == 0 && shared[name] == t {
		delete(shared, name)
	}
}
