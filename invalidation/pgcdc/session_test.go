package pgcdc

import (
	"context"
	"encoding/binary"
	"testing"
)

// xlog wraps a pgoutput message in an XLogData CopyData payload.
func xlog(msg []byte) []byte {
	return append(append([]byte{'w'}, make([]byte, 24)...), msg...)
}

func begin() []byte {
	b := make([]byte, 21)
	b[0] = 'B'
	return b
}

func insert(rel uint32) []byte {
	b := []byte{'I', 0, 0, 0, 0, 'N', 0, 1, 't', 0, 0, 0, 1, '7'}
	binary.BigEndian.PutUint32(b[1:], rel)
	return b
}

// TestBadMessagesAreCountedNeverFatal feeds a session what a broken or
// unexpected server could send: each is counted and skipped, and a change
// that cannot be read makes its transaction clear the cache rather than be
// lost.
func TestBadMessagesAreCountedNeverFatal(t *testing.T) {
	c, err := New("postgres://x@127.0.0.1/db", []Rule{{Table: "profiles", Keys: []string{"profile:{id}"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{c: c, relations: map[uint32]*boundRule{}}
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		data      []byte
		bad       uint64 // total so far
		wantClear bool
	}{
		{"empty CopyData", nil, 1, false},
		{"unknown CopyData type", []byte{'x', 1, 2}, 2, false},
		{"short XLogData", []byte{'w', 1, 2}, 3, false},
		{"short keepalive", []byte{'k', 1}, 4, false},
		{"insert outside a transaction", xlog(insert(9)), 5, false},
		{"begin", xlog(begin()), 5, false},
		{"insert of a relation never described", xlog(insert(9)), 6, true},
		{"truncated relation message", xlog([]byte{'R', 0, 0}), 7, true},
		{"unknown pgoutput message", xlog([]byte{'Z', 0}), 8, true},
		{"empty pgoutput message", xlog(nil), 9, true},
	} {
		if err := s.handle(ctx, tc.data); err != nil {
			t.Fatalf("%s: handle returned %v; want it skipped", tc.name, err)
		}
		if got := c.Stats().BadMessages; got != tc.bad {
			t.Errorf("%s: %d bad messages counted, want %d", tc.name, got, tc.bad)
		}
		if s.tx != nil && s.tx.clear != tc.wantClear {
			t.Errorf("%s: open transaction clears the cache: %v, want %v", tc.name, s.tx.clear, tc.wantClear)
		}
	}
}
