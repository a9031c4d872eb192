package coherence

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Source is the source of truth the nodes cache: an in-memory versioned
// store that keeps, for every key, the history of its values and when
// each write of a new value started and finished. Values name their key
// and version ("user:7#12"; a removal is "user:7#13!"), so a value read
// from a cache says which version it is. Its methods are safe for
// concurrent use.
type Source struct {
	mu   sync.Mutex
	keys map[string][]version // index = version number; version 0 is the initial value
}

// version is one value of a key and the write that made it.
type version struct {
	removed bool
	writer  int       // node that wrote it to the cache; -1 for the initial value
	start   time.Time // when the write began (the source was updated then)
	done    time.Time // when the cache call returned; zero while it runs
}

// NewSource returns a source whose keys all hold version 0.
func NewSource(keys []string) *Source {
	s := &Source{keys: make(map[string][]version, len(keys))}
	for _, k := range keys {
		s.keys[k] = []version{{writer: -1}}
	}
	return s
}

// Value is what the source holds for key at version v.
func Value(key string, v int, removed bool) string {
	if removed {
		return key + "#" + strconv.Itoa(v) + "!"
	}
	return key + "#" + strconv.Itoa(v)
}

// parse returns the key and version a value names.
func parse(value string) (key string, v int, err error) {
	i := strings.LastIndexByte(value, '#')
	if i < 0 {
		return "", 0, fmt.Errorf("value %q names no version", value)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(value[i+1:], "!"))
	if err != nil {
		return "", 0, fmt.Errorf("value %q: bad version: %v", value, err)
	}
	return value[:i], n, nil
}

// Read returns the current value of key, as a factory reading the database
// would (also while the write that made it is still updating the caches).
func (s *Source) Read(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.keys[key]
	return Value(key, len(h)-1, h[len(h)-1].removed)
}

// Latest returns key's current version number.
func (s *Source) Latest(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys[key]) - 1
}

// begin records a new version of key, written by node writer from now on,
// and returns its number and value. The caller holds the key's write lock.
func (s *Source) begin(key string, writer int, removed bool) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := append(s.keys[key], version{removed: removed, writer: writer, start: time.Now()})
	s.keys[key] = h
	return len(h) - 1, Value(key, len(h)-1, removed)
}

// finish records that the write of version v of key returned at t.
func (s *Source) finish(key string, v int, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key][v].done = t
}

// after returns copies of the versions of key newer than v.
func (s *Source) after(key string, v int) []version {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.keys[key]
	if v+1 >= len(h) {
		return nil
	}
	return append([]version(nil), h[v+1:]...)
}
