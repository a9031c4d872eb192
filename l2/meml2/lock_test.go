package meml2_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

var _ l2.Locker = (*meml2.Store)(nil)

func TestLock(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	s := meml2.New(&meml2.Options{Now: func() time.Time { return now }})
	tok, ok, err := s.TryLock(ctx, "lk", time.Second)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v", ok, err)
	}
	if _, ok, _ := s.TryLock(ctx, "lk", time.Second); ok {
		t.Fatal("a held lock was taken again")
	}
	s.Unlock(ctx, "lk", "not-the-token")
	if _, ok, _ := s.TryLock(ctx, "lk", time.Second); ok {
		t.Fatal("Unlock with a wrong token released the lock")
	}
	s.Unlock(ctx, "lk", tok)
	tok2, ok, _ := s.TryLock(ctx, "lk", time.Second)
	if !ok {
		t.Fatal("lock not free after Unlock")
	}
	now = now.Add(2 * time.Second) // expired: free for anyone
	if _, ok, _ := s.TryLock(ctx, "lk", time.Second); !ok {
		t.Fatal("an expired lock was not free")
	}
	s.Unlock(ctx, "lk", tok2) // the old owner's unlock leaves the new holder alone
	if _, ok, _ := s.TryLock(ctx, "lk", time.Second); ok {
		t.Fatal("an old owner's Unlock released someone else's lock")
	}
}
