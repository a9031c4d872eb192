package redisl2_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

// TestValueOverMaxValueLenIsRefused: a value longer than Redis's default
// proto-max-bulk-len is refused before it is sent, with an error wrapping
// l2.ErrValueTooLarge (permanent: core does not retry it).
func TestValueOverMaxValueLenIsRefused(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	// Never written to: the pages stay untouched, the test costs address
	// space only.
	big := make([]byte, redisl2.MaxValueLen+1)
	if err := s.Set(ctx, "big", big, time.Minute); !errors.Is(err, l2.ErrValueTooLarge) {
		t.Errorf("Set of %d bytes: err = %v, want one wrapping l2.ErrValueTooLarge", len(big), err)
	}
	if _, err := s.SetIfNewer(ctx, "big", big, time.Minute, 1); !errors.Is(err, l2.ErrValueTooLarge) {
		t.Errorf("SetIfNewer of %d bytes: err = %v, want one wrapping l2.ErrValueTooLarge", len(big), err)
	}
	if _, found, err := s.Get(ctx, "big"); err != nil || found {
		t.Errorf("Get after the refused writes: found %v, err %v; want a miss", found, err)
	}
}
