package core

import (
	"testing"
	"unsafe"
)

// TestMissRunSize pins the size of what a GetOrSet miss allocates for its
// run (the flight, the factory's context and its copy of the options) for a
// small value type: at most 512 bytes it stays in the 512-byte size class,
// without a malloc header (it was 616 bytes, in the 640-byte class).
func TestMissRunSize(t *testing.T) {
	type user struct {
		ID   int
		Name string
	}
	if n := unsafe.Sizeof(missRun[user]{}); n > 512 {
		t.Errorf("missRun[user] is %d bytes, want at most 512 (flight %d, FactoryContext %d, EntryOptions %d)",
			n, unsafe.Sizeof(flight{}), unsafe.Sizeof(FactoryContext[user]{}), unsafe.Sizeof(EntryOptions{}))
	}
}
