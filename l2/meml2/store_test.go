package meml2_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func get(t *testing.T, s l2.Store, key string) ([]byte, bool) {
	t.Helper()
	v, found, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, found
}

func set(t *testing.T, s l2.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func TestExpiryFollowsOptionsNow(t *testing.T) {
	clock := newFakeClock()
	s := meml2.New(&meml2.Options{Now: clock.Now})
	defer s.Close()
	set(t, s, "k", "v", 10*time.Second)
	clock.Advance(10*time.Second - 1)
	if _, found := get(t, s, "k"); !found {
		t.Fatal("entry gone 1ns before its TTL")
	}
	if vals, _ := s.GetMany(t.Context(), []string{"k"}); vals[0] == nil {
		t.Fatal("GetMany: entry gone 1ns before its TTL")
	}
	clock.Advance(1)
	if _, found := get(t, s, "k"); found {
		t.Fatal("entry still found at its TTL")
	}
	if vals, _ := s.GetMany(t.Context(), []string{"k"}); vals[0] != nil {
		t.Fatal("GetMany: entry still found at its TTL")
	}
}

func TestHugeTTLDoesNotOverflow(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	set(t, s, "k", "v", math.MaxInt64)
	if _, found := get(t, s, "k"); !found {
		t.Fatal("entry with the largest TTL not found")
	}
}

func TestNonPositiveTTLIsAnError(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Set(t.Context(), "k", []byte("v"), ttl); err == nil || !strings.HasPrefix(err.Error(), "meml2: ") {
			t.Errorf("Set with ttl %v = %v, want a meml2 error", ttl, err)
		}
		if _, err := s.SetIfNewer(t.Context(), "k", []byte("v"), ttl, 1); err == nil {
			t.Errorf("SetIfNewer with ttl %v = nil error", ttl)
		}
	}
	if _, found := get(t, s, "k"); found {
		t.Error("a Set with a bad ttl stored a value")
	}
}

func TestSetIfNewerReplacesUnversionedValue(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	set(t, s, "k", "plain", time.Minute)
	stored, err := s.SetIfNewer(t.Context(), "k", []byte("versioned"), time.Minute, math.MinInt64)
	if err != nil || !stored {
		t.Fatalf("SetIfNewer over a value stored by Set = %v, %v; want true, nil", stored, err)
	}
}

func TestPrivateStoresAreIndependent(t *testing.T) {
	a, b := meml2.New(nil), meml2.New(nil)
	defer a.Close()
	defer b.Close()
	set(t, a, "k", "a", time.Minute)
	if _, found := get(t, b, "k"); found {
		t.Fatal("a value set in one private store is visible in another")
	}
}

func TestSharedHandles(t *testing.T) {
	const url = "mem://TestSharedHandles"
	a, err := l2.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := meml2.NewShared("TestSharedHandles", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := l2.Open(t.Context(), "mem://TestSharedHandles-other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	set(t, a, "k", "from a", time.Minute)
	if v, _ := get(t, b, "k"); string(v) != "from a" {
		t.Fatalf("handle b reads %q, want %q", v, "from a")
	}
	if _, found := get(t, other, "k"); found {
		t.Fatal("a store of another name sees the value")
	}

	// Closing one handle leaves the others working and the data in place.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Get(t.Context(), "k"); !errors.Is(err, l2.ErrClosed) {
		t.Fatalf("Get on the closed handle = %v, want ErrClosed", err)
	}
	c, err := l2.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, c, "k"); string(v) != "from a" {
		t.Fatalf("handle opened after another closed reads %q, want %q", v, "from a")
	}
	set(t, b, "k2", "from b", time.Minute)
	if v, _ := get(t, c, "k2"); string(v) != "from b" {
		t.Fatalf("handle c reads %q, want %q", v, "from b")
	}

	// The table goes with its last handle.
	b.Close()
	c.Close()
	c.Close() // idempotent: must not release twice
	d, err := l2.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, found := get(t, d, "k"); found {
		t.Fatal("data survived the last handle's Close")
	}
}

func TestDoubleCloseReleasesOnce(t *testing.T) {
	a, _ := meml2.NewShared("TestDoubleCloseReleasesOnce", nil)
	b, _ := meml2.NewShared("TestDoubleCloseReleasesOnce", nil)
	defer b.Close()
	set(t, b, "k", "v", time.Minute)
	a.Close()
	a.Close()
	c, _ := meml2.NewShared("TestDoubleCloseReleasesOnce", nil)
	defer c.Close()
	if _, found := get(t, c, "k"); !found {
		t.Fatal("a second Close of one handle dropped a table other handles still use")
	}
}

func TestNewSharedEmptyName(t *testing.T) {
	if _, err := meml2.NewShared("", nil); err == nil {
		t.Fatal("NewShared with an empty name succeeded")
	}
}

func TestOpenURLErrors(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"mem://", "missing name"},
		{"mem:///", "missing name"},
		{"mem:name", "no //"},
		{"mem://user:secret@name", "unexpected user info"},
		{"mem://name/path", "unexpected path"},
		{"mem://name?size=3", "unexpected query"},
		{"mem://name?", "unexpected query"},
		{"mem://name#frag", "unexpected fragment"},
	} {
		s, err := l2.Open(t.Context(), tt.url)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", tt.url)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "meml2: ") || !strings.Contains(msg, tt.want) || !strings.Contains(msg, "mem://NAME") {
			t.Errorf("Open(%q) = %q, want a meml2 error saying %q and showing mem://NAME", tt.url, msg, tt.want)
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("Open(%q) error shows the password: %q", tt.url, msg)
		}
	}
}

func TestOpenWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l2.Open(ctx, "mem://TestOpenWithDoneContext"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestFaultErr(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	set(t, s, "k", "v", time.Minute)
	boom := errors.New("boom")
	s.SetFault(meml2.Fault{Err: boom})
	ctx := t.Context()
	_, found, err := s.Get(ctx, "k")
	if !errors.Is(err, boom) || found {
		t.Errorf("Get under a fault = found %v, %v; want an error wrapping boom", found, err)
	}
	if err := s.Set(ctx, "k", []byte("w"), time.Minute); !errors.Is(err, boom) {
		t.Errorf("Set under a fault = %v", err)
	}
	if _, err := s.SetIfNewer(ctx, "k", []byte("w"), time.Minute, 1); !errors.Is(err, boom) {
		t.Errorf("SetIfNewer under a fault = %v", err)
	}
	if _, err := s.GetMany(ctx, []string{"k"}); !errors.Is(err, boom) {
		t.Errorf("GetMany under a fault = %v", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, boom) {
		t.Errorf("Delete under a fault = %v", err)
	}
	s.ClearFault()
	if v, _ := get(t, s, "k"); string(v) != "v" {
		t.Errorf("after ClearFault Get = %q, want %q (failed calls must change nothing)", v, "v")
	}
	s.SetFault(meml2.Fault{Err: boom})
	s.SetFault(meml2.Fault{}) // the zero Fault clears too
	if _, _, err := s.Get(ctx, "k"); err != nil {
		t.Errorf("after SetFault(Fault{}) Get = %v", err)
	}
}

func TestFaultIsPerHandle(t *testing.T) {
	a, _ := meml2.NewShared("TestFaultIsPerHandle", nil)
	b, _ := meml2.NewShared("TestFaultIsPerHandle", nil)
	defer a.Close()
	defer b.Close()
	a.SetFault(meml2.Fault{Err: errors.New("down")})
	set(t, b, "k", "v", time.Minute)
	if _, _, err := a.Get(t.Context(), "k"); err == nil {
		t.Error("faulty handle succeeded")
	}
}

func TestFaultDelayHonoursContext(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	s.SetFault(meml2.Fault{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Set(ctx, "k", []byte("v"), time.Minute) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Set under a 1h delay with a 20ms ctx = %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Set under a delay ignored its ctx")
	}
	s.ClearFault()
	if _, found := get(t, s, "k"); found {
		t.Fatal("a call cancelled during its delay stored its value")
	}
}

func TestFaultDelayThenErr(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	boom := errors.New("boom")
	const delay = 30 * time.Millisecond
	s.SetFault(meml2.Fault{Err: boom, Delay: delay})
	start := time.Now()
	_, _, err := s.Get(t.Context(), "k")
	if !errors.Is(err, boom) {
		t.Fatalf("Get = %v, want boom", err)
	}
	if elapsed := time.Since(start); elapsed < delay {
		t.Fatalf("Get returned after %v, before the %v delay", elapsed, delay)
	}
}

func TestFaultSwitchingIsRaceFree(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				s.SetFault(meml2.Fault{Err: boom})
			} else {
				s.ClearFault()
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 500 {
				err := s.Set(context.Background(), "k", []byte("v"), time.Minute)
				if err != nil && !errors.Is(err, boom) {
					t.Errorf("Set = %v", err)
				}
				_ = s.Stats()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
}

func TestStats(t *testing.T) {
	s := meml2.New(nil)
	ctx := t.Context()
	set(t, s, "a", "1", time.Minute)
	_, _ = s.SetIfNewer(ctx, "b", []byte("2"), time.Minute, 5)
	_, _ = s.SetIfNewer(ctx, "b", []byte("3"), time.Minute, 1) // refused, still counted
	get(t, s, "a")
	get(t, s, "missing")
	_, _ = s.GetMany(ctx, []string{"a", "b", "missing"})
	_ = s.Delete(ctx, "a")
	s.SetFault(meml2.Fault{Err: errors.New("down")})
	_, _, _ = s.Get(ctx, "a") // failed by the fault, still counted
	s.ClearFault()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, _ = s.Get(cancelled, "a") // refused: not counted
	want := meml2.Stats{Gets: 6, Hits: 3, Sets: 3, Deletes: 1}
	if got := s.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	s.Close()
	_, _, _ = s.Get(ctx, "a") // refused: not counted
	if got := s.Stats(); got != want {
		t.Fatalf("Stats() after Close = %+v, want %+v", got, want)
	}
}

func TestValuesAreCopied(t *testing.T) {
	s := meml2.New(nil)
	defer s.Close()
	v := []byte("abc")
	_ = s.Set(t.Context(), "k", v, time.Minute)
	v[0] = 'X'
	got, _ := get(t, s, "k")
	got[1] = 'Y'
	many, _ := s.GetMany(t.Context(), []string{"k"})
	many[0][2] = 'Z'
	if again, _ := get(t, s, "k"); !bytes.Equal(again, []byte("abc")) {
		t.Fatalf("stored value changed to %q", again)
	}
}

func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 10 {
		s := meml2.New(nil)
		s.SetFault(meml2.Fault{Delay: time.Millisecond})
		set(t, s, "k", "v", time.Minute)
		get(t, s, "k")
		if i%2 == 0 {
			s.SetFault(meml2.Fault{Delay: time.Hour})
			ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
			_, _, _ = s.Get(ctx, "k")
			cancel()
		}
		s.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
