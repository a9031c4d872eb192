package meml2

import (
	"fmt"
	"testing"
	"time"
)

// TestWritesSweepExpiredEntries checks that expired entries nobody reads
// again do not pile up: later writes sweep them.
func TestWritesSweepExpiredEntries(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := New(&Options{Now: func() time.Time { return now }})
	defer s.Close()
	for i := range 1000 {
		_ = s.Set(t.Context(), fmt.Sprint("old", i), []byte("v"), time.Second)
	}
	now = now.Add(time.Minute)
	for i := range 2 * minSweep {
		_ = s.Set(t.Context(), fmt.Sprint("new", i%10), []byte("v"), time.Hour)
	}
	s.tab.mu.RLock()
	n := len(s.tab.entries)
	s.tab.mu.RUnlock()
	if n > 10+minSweep {
		t.Fatalf("%d entries left; want the 1000 expired ones swept", n)
	}
}

func TestLastCloseForgetsSharedTable(t *testing.T) {
	s, _ := NewShared("TestLastCloseForgetsSharedTable", nil)
	s.Close()
	sharedMu.Lock()
	_, ok := shared["TestLastCloseForgetsSharedTable"]
	sharedMu.Unlock()
	if ok {
		t.Fatal("shared table still held after its last handle closed")
	}
}

// TestUniqueKeysWithShortTTLDoNotPileUp is the regression test for a sweep
// that never ran while every write added a new key.
func TestUniqueKeysWithShortTTLDoNotPileUp(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := New(&Options{Now: func() time.Time { return now }})
	defer s.Close()
	for i := range 10000 {
		_ = s.Set(t.Context(), fmt.Sprint("k", i), []byte("v"), time.Second)
		now = now.Add(100 * time.Millisecond) // about 10 entries live at a time
	}
	s.tab.mu.RLock()
	n := len(s.tab.entries)
	s.tab.mu.RUnlock()
	if n > 4*minSweep {
		t.Fatalf("%d entries held, about 10 live: expired entries pile up", n)
	}
}
