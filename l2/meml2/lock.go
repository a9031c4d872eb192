package meml2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// TryLock takes the lock named key for ttl if it is free (locks share the
// key space of entries, as they do on Redis) and returns its token.
func (s *Store) TryLock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if err := s.begin(ctx, "lock", &s.sets, 1); err != nil {
		return "", false, err
	}
	if ttl <= 0 {
		return "", false, fmt.Errorf("meml2: lock: ttl must be positive, got %v", ttl)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	if !s.tab.setIfAbsent(key, []byte(token), ttl, s.now()) {
		return "", false, nil
	}
	return token, true, nil
}

// Unlock releases the lock named key if token still owns it.
func (s *Store) Unlock(ctx context.Context, key, token string) error {
	if err := s.begin(ctx, "unlock", &s.deletes, 1); err != nil {
		return err
	}
	s.tab.deleteIf(key, token, s.now())
	return nil
}

func (t *table) setIfAbsent(key string, value []byte, ttl time.Duration, now time.Time) bool {
	n := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.entries[key]; ok && old.expires > n {
		return false
	}
	t.entries[key] = entry{value: clone(value), expires: n + int64(ttl), version: -1 << 63}
	return true
}

func (t *table) deleteIf(key, value string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.entries[key]; ok && old.expires > now.UnixNano() && string(old.value) == value {
		delete(t.entries, key)
	}
}
