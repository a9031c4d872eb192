package core

import (
	"testing"
	"unsafe"
)

// TestMissRunSize pins the sizes of what a GetOrSet miss allocates for its
// run, for a small value type: the factory's context, the factory and its
// FactoryContext (the flight and the options come from a pool), at most 176
// bytes (a size class; it was 616 bytes with them, in the 640-byte class),
// and with the flight and the options when they are not pooled, at most 576
// bytes.
func TestMissRunSize(t *testing.T) {
	type user struct {
		ID   int
		Name string
	}
	parts := []any{"flight", unsafe.Sizeof(flight{}), "runCtx", unsafe.Sizeof(runCtx{}), "FactoryContext", unsafe.Sizeof(FactoryContext[user]{}), "EntryOptions", unsafe.Sizeof(EntryOptions{})}
	if n := unsafe.Sizeof(missRun[user]{}); n > 176 {
		t.Errorf("missRun[user] is %d bytes, want at most 176 %v", n, parts)
	}
	if n := unsafe.Sizeof(missRunOptions[user]{}); n > 576 {
		t.Errorf("missRunOptions[user] is %d bytes, want at most 576 %v", n, parts)
	}
}

// TestEntrySize pins the size of an L1 entry, which every cached value has
// (allocated on each miss, kept while cached): at most 112 bytes, a size
// class (it was 144), with the validator and the sliding expiration apart.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > 112 {
		t.Errorf("entry is %d bytes, want at most 112", n)
	}
}
