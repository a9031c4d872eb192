package redisl2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

// newStore returns a store with a unique key prefix on a client of its own,
// and the client (closed when the test ends).
func newStore(t *testing.T) (*redisl2.Store, *redis.Client, string) {
	t.Helper()
	c := redistest.NewClient(t, nil)
	prefix := redistest.Prefix()
	s, err := redisl2.New(c, &redisl2.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c, prefix
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewNilClient(t *testing.T) {
	if _, err := redisl2.New(nil, nil); err == nil {
		t.Fatal("New(nil, nil) succeeded, want an error")
	}
}

// TestKeyLayout checks what lands in Redis: the prefixed key, the 16-digit
// version header before the value, and the TTL in milliseconds (rounded up).
func TestKeyLayout(t *testing.T) {
	s, c, prefix := newStore(t)
	ctx := ctxFor(t)
	if err := s.Set(ctx, "plain", []byte("hello"), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(ctx, prefix+"plain").Result()
	if err != nil {
		t.Fatalf("GET %q: %v", prefix+"plain", err)
	}
	if want := "0000000000000000hello"; raw != want {
		t.Errorf("Redis value after Set = %q, want %q", raw, want)
	}
	if pttl := c.PTTL(ctx, prefix+"plain").Val(); pttl <= 80*time.Second || pttl > 90*time.Second {
		t.Errorf("PTTL after Set with ttl 90s = %v", pttl)
	}

	const version = int64(1_700_000_000_123_456_789)
	if _, err := s.SetIfNewer(ctx, "versioned", []byte("v"), time.Minute, version); err != nil {
		t.Fatal(err)
	}
	raw = c.Get(ctx, prefix+"versioned").Val()
	if want := fmt.Sprintf("%016x", uint64(version)^(1<<63)) + "v"; raw != want {
		t.Errorf("Redis value after SetIfNewer = %q, want %q", raw, want)
	}

	// A sub-millisecond TTL is one millisecond, not "no expiry" nor an error.
	if err := s.Set(ctx, "tiny", []byte("x"), time.Nanosecond); err != nil {
		t.Fatalf("Set with ttl 1ns: %v", err)
	}
	if _, err := s.SetIfNewer(ctx, "tiny2", []byte("x"), 300*time.Microsecond, 1); err != nil {
		t.Fatalf("SetIfNewer with ttl 300µs: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Exists(ctx, prefix+"tiny", prefix+"tiny2").Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("keys set with sub-millisecond TTLs never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Set(ctx, "bad", []byte("x"), ttl); err == nil {
			t.Errorf("Set with ttl %v succeeded, want an error", ttl)
		}
		if _, err := s.SetIfNewer(ctx, "bad", []byte("x"), ttl, 1); err == nil {
			t.Errorf("SetIfNewer with ttl %v succeeded, want an error", ttl)
		}
	}
}

// TestSetIfNewerVersions checks the ends of the int64 range and the sign
// boundary, which the conformance suite does not reach, and that a plain
// Set is older than every version.
func TestSetIfNewerVersions(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	steps := []struct {
		version int64
		want    bool
	}{
		{math.MinInt64 + 1, true}, {math.MinInt64 + 1, false}, {-1, true}, {-2, false},
		{0, true}, {-1, false}, {1, true}, {math.MaxInt64 - 1, true},
		{math.MaxInt64 - 2, false}, {math.MaxInt64, true}, {math.MaxInt64, false},
	}
	for _, st := range steps {
		stored, err := s.SetIfNewer(ctx, "k", fmt.Appendf(nil, "%d", st.version), time.Minute, st.version)
		if err != nil || stored != st.want {
			t.Fatalf("SetIfNewer(version %d) = %v, %v; want %v", st.version, stored, err, st.want)
		}
	}
	if err := s.Set(ctx, "k", []byte("plain"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if stored, err := s.SetIfNewer(ctx, "k", []byte("min+1"), time.Minute, math.MinInt64+1); err != nil || !stored {
		t.Errorf("SetIfNewer(MinInt64+1) over a plain Set = %v, %v; want stored", stored, err)
	}
	if stored, _ := s.SetIfNewer(ctx, "k", []byte("min"), time.Minute, math.MinInt64); stored {
		t.Error("SetIfNewer(MinInt64) replaced version MinInt64+1")
	}
}

// TestLongestTTLDoesNotOverflow: rounding the longest Duration up to whole
// milliseconds overflowed into a negative PX, which Redis refused.
func TestLongestTTLDoesNotOverflow(t *testing.T) {
	s, c, prefix := newStore(t)
	ctx := ctxFor(t)
	t.Cleanup(func() { c.Del(context.Background(), prefix+"set", prefix+"cond") })
	if err := s.Set(ctx, "set", []byte("v"), math.MaxInt64); err != nil {
		t.Fatalf("Set with ttl %v: %v", time.Duration(math.MaxInt64), err)
	}
	if stored, err := s.SetIfNewer(ctx, "cond", []byte("v"), math.MaxInt64, 1); err != nil || !stored {
		t.Fatalf("SetIfNewer with ttl %v = %v, %v", time.Duration(math.MaxInt64), stored, err)
	}
	for _, k := range []string{"set", "cond"} {
		if pttl := c.PTTL(ctx, prefix+k).Val(); pttl < 290*365*24*time.Hour {
			t.Errorf("PTTL of %q = %v, want about 292 years", k, pttl)
		}
	}
}

// TestSetIfNewerConcurrent: many goroutines write one key with random
// versions around today's Unix nanoseconds; what remains is the value of the
// highest version, and exactly the writes that raised the maximum stored.
func TestSetIfNewerConcurrent(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	const goroutines, each = 16, 50
	base := time.Now().UnixNano()
	var (
		mu      sync.Mutex
		max     = int64(math.MinInt64)
		storedN int
	)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), uint64(base)))
			for range each {
				v := base + r.Int64N(1000) // collisions and 1 ns gaps
				stored, err := s.SetIfNewer(ctx, "k", fmt.Appendf(nil, "%d", v), time.Minute, v)
				if err != nil {
					t.Errorf("SetIfNewer: %v", err)
					return
				}
				mu.Lock()
				if stored {
					storedN++
				}
				if v > max {
					max = v
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, found, err := s.Get(ctx, "k")
	if err != nil || !found {
		t.Fatalf("Get = %q, %v, %v", got, found, err)
	}
	if want := fmt.Sprint(max); string(got) != want {
		t.Errorf("stored value = %s, want the highest version %s", got, want)
	}
	if storedN == 0 || storedN > goroutines*each {
		t.Errorf("%d of %d writes stored", storedN, goroutines*each)
	}
	if stored, _ := s.SetIfNewer(ctx, "k", []byte("same"), time.Minute, max); stored {
		t.Error("SetIfNewer with the highest version again stored")
	}
}

// TestLargeKeyAndValue: a 1 MiB key and a 1 MiB value go through every
// method intact.
func TestLargeKeyAndValue(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxFor(t)
	big := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
	key := strings.Repeat("k", 1<<20)
	if err := s.Set(ctx, key, big, time.Minute); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got, found, err := s.Get(ctx, key); err != nil || !found || !bytes.Equal(got, big) {
		t.Fatalf("Get of a 1 MiB key: found=%v err=%v equal=%v", found, err, bytes.Equal(got, big))
	}
	big2 := bytes.Repeat([]byte{0xab}, 1<<20)
	if stored, err := s.SetIfNewer(ctx, key, big2, time.Minute, 7); err != nil || !stored {
		t.Fatalf("SetIfNewer: %v, %v", stored, err)
	}
	vals, err := s.GetMany(ctx, []string{key, "missing", key})
	if err != nil || len(vals) != 3 || !bytes.Equal(vals[0], big2) || vals[1] != nil || !bytes.Equal(vals[2], big2) {
		t.Fatalf("GetMany: err=%v, %d values", err, len(vals))
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, found, _ := s.Get(ctx, key); found {
		t.Fatal("1 MiB key found after Delete")
	}
}

// TestSlowServer: with every byte to and from Redis delayed by seconds,
// each call returns soon after its context's deadline or cancellation with
// an error wrapping the context's error, and the store works again once the
// server is fast.
func TestSlowServer(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	c := redistest.NewClient(t, &redis.Options{Addr: proxy.Addr()})
	s, err := redisl2.New(c, &redisl2.Options{KeyPrefix: redistest.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Set(ctxFor(t), "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set before the slowdown: %v", err)
	}
	proxy.SetLatency(3 * time.Second)
	calls := map[string]func(context.Context) error{
		"Get":    func(ctx context.Context) error { _, _, err := s.Get(ctx, "k"); return err },
		"Set":    func(ctx context.Context) error { return s.Set(ctx, "k", []byte("w"), time.Minute) },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "other") },
		"SetIfNewer": func(ctx context.Context) error {
			_, err := s.SetIfNewer(ctx, "k", []byte("w"), time.Minute, 5)
			return err
		},
		"GetMany": func(ctx context.Context) error { _, err := s.GetMany(ctx, []string{"k", "x"}); return err },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a slow server with a 100ms deadline = %v, want an error wrapping context.DeadlineExceeded", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s on a slow server returned after %v, not soon after its 100ms deadline", name, d)
		}

		ctx, cancel = context.WithCancel(context.Background())
		timer := time.AfterFunc(100*time.Millisecond, cancel)
		start = time.Now()
		err = call(ctx)
		timer.Stop()
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a slow server, cancelled = %v, want an error wrapping context.Canceled", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s on a slow server returned %v after being cancelled", name, d)
		}
	}
	proxy.SetLatency(0)
	// The abandoned commands finish (or time out) on their own; then the
	// store answers again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := s.Get(ctxFor(t), "k")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still failing 30s after the server became fast again: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCloseLeavesClient: closing a store made by New leaves the user's
// client working.
func TestCloseLeavesClient(t *testing.T) {
	s, c, _ := newStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctxFor(t)).Err(); err != nil {
		t.Fatalf("client after the store's Close: %v", err)
	}
	if _, _, err := s.Get(ctxFor(t), "k"); !errors.Is(err, l2.ErrClosed) {
		t.Fatalf("Get after Close = %v, want l2.ErrClosed", err)
	}
}
