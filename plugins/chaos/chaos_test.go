package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/plugins/chaos"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

// Stores that hide some of meml2's optional interfaces.
type (
	plainStore struct{ l2.Store }
	condStore  struct{ l2.ConditionalStore }
	multiStore struct{ l2.MultiGetter }
)

func TestStoreKeepsOptionalInterfaces(t *testing.T) {
	mem := meml2.New(nil)
	defer mem.Close()
	for _, tt := range []struct {
		name        string
		inner       l2.Store
		cond, multi bool
	}{
		{"plain", plainStore{mem}, false, false},
		{"conditional", condStore{mem}, true, false},
		{"multi-getter", multiStore{mem}, false, true},
		{"both", mem, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := chaos.NewStore(tt.inner, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, cond := s.(l2.ConditionalStore)
			_, multi := s.(l2.MultiGetter)
			if cond != tt.cond || multi != tt.multi {
				t.Fatalf("wrapper: ConditionalStore %v, MultiGetter %v; want %v, %v", cond, multi, tt.cond, tt.multi)
			}
			if s.Unwrap() != tt.inner {
				t.Fatal("Unwrap does not return the wrapped store")
			}
		})
	}
}

func TestFailureRate(t *testing.T) {
	ctx := context.Background()
	mem := meml2.New(nil)
	defer mem.Close()
	s, err := chaos.NewStore(mem, &chaos.Options{FailureRate: 0.3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	failed := 0
	for i := range n {
		err := s.Set(ctx, fmt.Sprint("k", i), []byte("v"), time.Minute)
		if err != nil {
			if !errors.Is(err, chaos.ErrInjected) || err.Error() != "chaos: injected failure of l2 Set" {
				t.Fatalf("Set = %v, want an error wrapping ErrInjected", err)
			}
			failed++
			// A failed call does not reach the store.
			if _, found, _ := mem.Get(ctx, fmt.Sprint("k", i)); found {
				t.Fatal("a failed Set reached the wrapped store")
			}
		}
	}
	if failed < n*25/100 || failed > n*35/100 {
		t.Fatalf("%d of %d calls failed at a rate of 0.3", failed, n)
	}
	if st := s.Stats(); st.Calls != n || st.Failures != uint64(failed) {
		t.Fatalf("Stats = %+v, want %d calls, %d failures", st, n, failed)
	}

	s.SetMode(chaos.Always)
	for range 100 {
		if _, _, err := s.Get(ctx, "k"); !errors.Is(err, chaos.ErrInjected) {
			t.Fatalf("Get in mode Always = %v, want ErrInjected", err)
		}
	}
	s.SetMode(chaos.Never)
	for range 100 {
		if _, _, err := s.Get(ctx, "k"); err != nil {
			t.Fatalf("Get in mode Never = %v", err)
		}
	}
	s.SetMode(chaos.Maybe)
	s.SetFailureRate(0)
	for range 100 {
		if _, _, err := s.Get(ctx, "k"); err != nil {
			t.Fatalf("Get with rate 0 = %v", err)
		}
	}
}

func TestSeedReproducesFaults(t *testing.T) {
	pattern := func(seed uint64) string {
		s, err := chaos.NewSerializer(jsonserializer.New(), &chaos.Options{FailureRate: 0.5, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 64 {
			if _, err := s.Marshal(1); err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	if a, b := pattern(42), pattern(42); a != b {
		t.Fatalf("seed 42 gave %s then %s", a, b)
	}
	if a, b := pattern(42), pattern(43); a == b {
		t.Fatalf("seeds 42 and 43 gave the same faults %s", a)
	}
	s, _ := chaos.NewSerializer(jsonserializer.New(), nil)
	if s.Seed() == 0 {
		t.Fatal("no seed picked for Options.Seed 0")
	}
}

func TestDelayHonoursContext(t *testing.T) {
	mem := meml2.New(nil)
	defer mem.Close()
	s, _ := chaos.NewStore(mem, nil)
	s.SetDelay(time.Hour, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := s.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, chaos.ErrInjected) {
		t.Fatalf("Get delayed past its deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get returned %v after its 20 ms deadline", d)
	}
	s.SetDelay(20*time.Millisecond, 40*time.Millisecond)
	start = time.Now()
	if _, _, err := s.Get(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("Get took %v with a delay of at least 20 ms", d)
	}
	if st := s.Stats(); st.Delayed != 2 {
		t.Fatalf("Stats.Delayed = %d, want 2", st.Delayed)
	}
	s.SetMode(chaos.Never) // no delay either
	start = time.Now()
	if _, _, err := s.Get(context.Background(), "k"); err != nil || time.Since(start) > time.Second {
		t.Fatalf("Get in mode Never: %v after %v", err, time.Since(start))
	}
}

func TestBackplaneDropsAndFails(t *testing.T) {
	ctx := context.Background()
	bus := membackplane.NewBus()
	pub, sub := bus.Connect(&membackplane.Options{QueueSize: 10_000}), bus.Connect(&membackplane.Options{QueueSize: 10_000})
	defer pub.Close()
	wpub, _ := chaos.NewBackplane(pub, &chaos.Options{FailureRate: 0.5, Seed: 3})
	wsub, _ := chaos.NewBackplane(sub, &chaos.Options{DropRate: 0.5, Seed: 4})
	defer wsub.Close()
	var mu sync.Mutex
	var got int
	var states []string
	s, err := wsub.Subscribe(ctx, "ch", func([]byte) { mu.Lock(); got++; mu.Unlock() },
		func(st backplane.State, _ error) { mu.Lock(); states = append(states, st.String()); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 2000
	sent := 0
	for i := range n {
		err := wpub.Publish(ctx, "ch", fmt.Append(nil, i))
		switch {
		case err == nil:
			sent++
		case !errors.Is(err, chaos.ErrInjected):
			t.Fatal(err)
		}
	}
	if sent < n*40/100 || sent > n*60/100 {
		t.Fatalf("%d of %d publishes succeeded at a failure rate of 0.5", sent, n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for wsub.Stats().Messages < uint64(sent) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if st := wsub.Stats(); st.Messages != uint64(sent) || st.Dropped+uint64(got) != uint64(sent) {
		t.Fatalf("sent %d, subscriber Stats %+v, delivered %d", sent, st, got)
	}
	if got < sent*40/100 || got > sent*60/100 {
		t.Fatalf("%d of %d messages delivered at a drop rate of 0.5", got, sent)
	}
	if len(states) != 1 || states[0] != "connected" {
		t.Fatalf("states %v: drops must be silent", states)
	}
}

func TestInvalidSettings(t *testing.T) {
	mem := meml2.New(nil)
	defer mem.Close()
	for _, tt := range []struct {
		opts chaos.Options
		want string
	}{
		{chaos.Options{FailureRate: 1.5}, "Options.FailureRate 1.5"},
		{chaos.Options{DropRate: -0.1}, "Options.DropRate -0.1"},
		{chaos.Options{MinDelay: 2, MaxDelay: 1}, "Options.MinDelay"},
		{chaos.Options{Mode: 7}, "Options.Mode 7"},
	} {
		if _, err := chaos.NewStore(mem, &tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewStore(%+v) = %v, want an error naming %q", tt.opts, err, tt.want)
		}
	}
	s, _ := chaos.NewStore(mem, nil)
	for name, f := range map[string]func(){
		"SetFailureRate(2)": func() { s.SetFailureRate(2) },
		"SetDropRate(NaN)":  func() { s.SetDropRate(math.NaN()) },
		"SetDelay(2, 1)":    func() { s.SetDelay(2, 1) },
		"SetDelay(-1, 1)":   func() { s.SetDelay(-1, 1) },
		"SetMode(Mode(9))":  func() { s.SetMode(chaos.Mode(9)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestSwitchingWhileInUse changes every setting while calls run (run with
// -race).
func TestSwitchingWhileInUse(t *testing.T) {
	ctx := context.Background()
	mem := meml2.New(nil)
	defer mem.Close()
	s, _ := chaos.NewStore(mem, &chaos.Options{FailureRate: 0.5})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.Set(ctx, "k", []byte("v"), time.Minute)
				_, _, _ = s.Get(ctx, "k")
			}
		})
	}
	for i := range 200 {
		s.SetMode([]chaos.Mode{chaos.Maybe, chaos.Never, chaos.Always}[i%3])
		s.SetFailureRate(float64(i%10) / 10)
		s.SetDelay(0, time.Duration(i%3)*time.Microsecond)
		s.SetDropRate(0.1)
		_ = s.Stats()
	}
	close(stop)
	wg.Wait()
}
