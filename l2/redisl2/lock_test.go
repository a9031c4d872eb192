package redisl2_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

var _ l2.Locker = (*redisl2.Store)(nil)

func TestLock(t *testing.T) {
	s, c, prefix := newStore(t)
	ctx := ctxFor(t)

	tok, ok, err := s.TryLock(ctx, "lock:a", 10*time.Second)
	if err != nil || !ok || len(tok) != 32 {
		t.Fatalf("TryLock on a free lock = %q, %v, %v; want a 32-digit token, true, nil", tok, ok, err)
	}
	if got := c.Get(ctx, prefix+"lock:a").Val(); got != tok {
		t.Errorf("Redis value of the lock = %q, want the token %q", got, tok)
	}
	if pttl := c.PTTL(ctx, prefix+"lock:a").Val(); pttl <= 9*time.Second || pttl > 10*time.Second {
		t.Errorf("PTTL of the lock = %v, want about 10s", pttl)
	}

	// Held: not re-taken.
	if tok2, ok, err := s.TryLock(ctx, "lock:a", 10*time.Second); err != nil || ok || tok2 != "" {
		t.Fatalf("TryLock on a held lock = %q, %v, %v; want \"\", false, nil", tok2, ok, err)
	}

	// A wrong token does not unlock.
	if err := s.Unlock(ctx, "lock:a", "not-the-token"); err != nil {
		t.Fatalf("Unlock with a wrong token: %v", err)
	}
	if _, ok, _ := s.TryLock(ctx, "lock:a", 10*time.Second); ok {
		t.Fatal("the lock was free after Unlock with a wrong token")
	}

	// The right token unlocks.
	if err := s.Unlock(ctx, "lock:a", tok); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if n := c.Exists(ctx, prefix+"lock:a").Val(); n != 0 {
		t.Fatal("the lock's key is still in Redis after Unlock")
	}
	tok3, ok, err := s.TryLock(ctx, "lock:a", 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("TryLock after Unlock = %v, %v; want true, nil", ok, err)
	}
	if tok3 == tok {
		t.Error("two lockings gave the same token")
	}

	// Unlocking a missing lock is not an error.
	if err := s.Unlock(ctx, "lock:missing", tok); err != nil {
		t.Errorf("Unlock of a missing lock: %v", err)
	}
}

func TestLockExpires(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)

	old, ok, err := s.TryLock(ctx, "lock:b", 50*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	time.Sleep(150 * time.Millisecond)
	// Expired: free again.
	cur, ok, err := s.TryLock(ctx, "lock:b", 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("TryLock on an expired lock = %v, %v; want true, nil", ok, err)
	}
	// The old owner's Unlock leaves the new holder alone.
	if err := s.Unlock(ctx, "lock:b", old); err != nil {
		t.Fatalf("Unlock by the old owner: %v", err)
	}
	if _, ok, _ := s.TryLock(ctx, "lock:b", 10*time.Second); ok {
		t.Fatal("the old owner's Unlock freed the new holder's lock")
	}
	if err := s.Unlock(ctx, "lock:b", cur); err != nil {
		t.Fatal(err)
	}
}

func TestLockErrors(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	if _, _, err := s.TryLock(ctx, "lock:c", 0); err == nil {
		t.Error("TryLock with ttl 0 succeeded, want an error")
	}
	_ = s.Close()
	if _, _, err := s.TryLock(ctx, "lock:c", time.Second); !errors.Is(err, l2.ErrClosed) {
		t.Errorf("TryLock after Close = %v, want ErrClosed", err)
	}
	if err := s.Unlock(ctx, "lock:c", "x"); !errors.Is(err, l2.ErrClosed) {
		t.Errorf("Unlock after Close = %v, want ErrClosed", err)
	}
}
