package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInjected is wrapped by every error a wrapper injects.
var ErrInjected = errors.New("chaos: injected failure")

// Mode says whether faults are injected.
type Mode int32

// The modes.
const (
	// Maybe injects faults at random, at the configured rates (the zero
	// value, and the default).
	Maybe Mode = iota
	// Never injects nothing: the wrapper passes every call through.
	Never
	// Always fails every call and drops every message, after the delay.
	Always
)

func (m Mode) String() string {
	switch m {
	case Maybe:
		return "maybe"
	case Never:
		return "never"
	case Always:
		return "always"
	}
	return fmt.Sprintf("Mode(%d)", int32(m))
}

// Options configure a wrapper's Injector. A nil *Options is the zero
// Options: mode Maybe with every rate and delay zero, so nothing happens
// until a Set method says otherwise.
type Options struct {
	// Mode is the starting mode (default Maybe).
	Mode Mode
	// FailureRate is the probability, in [0, 1], that a call fails.
	FailureRate float64
	// MinDelay and MaxDelay bound the random delay of each call
	// (0 <= MinDelay <= MaxDelay).
	MinDelay, MaxDelay time.Duration
	// DropRate is the probability, in [0, 1], that a backplane message is
	// dropped. Stores and serializers ignore it.
	DropRate float64
	// Seed seeds the random draws; 0 picks a random seed (see Seed).
	Seed uint64
}

// Stats counts what an Injector did.
type Stats struct {
	// Calls counts the calls that went through the Injector (in any
	// mode); Failures the ones it failed, Delayed the ones it delayed.
	Calls, Failures, Delayed uint64
	// Messages counts the backplane messages it saw; Dropped the ones it
	// dropped.
	Messages, Dropped uint64
}

// Controls are the methods of an Injector, which every wrapper has: the
// switches of its faults and their counts.
type Controls interface {
	SetMode(m Mode)
	Mode() Mode
	SetFailureRate(p float64)
	SetDropRate(p float64)
	SetDelay(min, max time.Duration)
	Seed() uint64
	Stats() Stats
}

var _ Controls = (*Injector)(nil)

// Injector decides, for each call and message of one wrapper, whether to
// delay it, fail it or drop it. Its methods are safe for concurrent use and
// take effect for the calls that start after they return. Every wrapper
// embeds one, so its methods are the wrapper's.
type Injector struct {
	mu          sync.Mutex
	rng         *rand.Rand
	seed        uint64
	mode        Mode
	failureRate float64
	dropRate    float64
	minDelay    time.Duration
	maxDelay    time.Duration

	calls, failures, delayed, messages, dropped atomic.Uint64
}

// newInjector validates opts and returns an Injector for them; what names
// the wrapper in errors.
func newInjector(what string, opts *Options) (*Injector, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Mode != Maybe && o.Mode != Never && o.Mode != Always:
		return nil, fmt.Errorf("chaos: %s: Options.Mode %d is unknown", what, o.Mode)
	case !probability(o.FailureRate):
		return nil, fmt.Errorf("chaos: %s: Options.FailureRate %v is not a probability in [0, 1]", what, o.FailureRate)
	case !probability(o.DropRate):
		return nil, fmt.Errorf("chaos: %s: Options.DropRate %v is not a probability in [0, 1]", what, o.DropRate)
	case o.MinDelay < 0 || o.MaxDelay < o.MinDelay:
		return nil, fmt.Errorf("chaos: %s: Options.MinDelay %v and MaxDelay %v: want 0 <= MinDelay <= MaxDelay", what, o.MinDelay, o.MaxDelay)
	}
	seed := o.Seed
	for seed == 0 {
		seed = rand.Uint64()
	}
	return &Injector{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed,
		mode: o.Mode, failureRate: o.FailureRate, dropRate: o.DropRate, minDelay: o.MinDelay, maxDelay: o.MaxDelay,
	}, nil
}

func probability(p float64) bool { return p >= 0 && p <= 1 && !math.IsNaN(p) }

// SetMode switches the mode.
func (i *Injector) SetMode(m Mode) {
	if m != Maybe && m != Never && m != Always {
		panic(fmt.Sprintf("chaos: SetMode(%d): unknown mode", m))
	}
	i.mu.Lock()
	i.mode = m
	i.mu.Unlock()
}

// Mode returns the current mode.
func (i *Injector) Mode() Mode {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mode
}

// SetFailureRate sets the probability that a call fails in mode Maybe. It
// panics if p is not in [0, 1].
func (i *Injector) SetFailureRate(p float64) {
	if !probability(p) {
		panic(fmt.Sprintf("chaos: SetFailureRate(%v): not a probability in [0, 1]", p))
	}
	i.mu.Lock()
	i.failureRate = p
	i.mu.Unlock()
}

// SetDropRate sets the probability that a backplane message is dropped in
// mode Maybe. It panics if p is not in [0, 1].
func (i *Injector) SetDropRate(p float64) {
	if !probability(p) {
		panic(fmt.Sprintf("chaos: SetDropRate(%v): not a probability in [0, 1]", p))
	}
	i.mu.Lock()
	i.dropRate = p
	i.mu.Unlock()
}

// SetDelay sets the bounds of the random delay of each call in modes Maybe
// and Always. It panics unless 0 <= min <= max.
func (i *Injector) SetDelay(min, max time.Duration) {
	if min < 0 || max < min {
		panic(fmt.Sprintf("chaos: SetDelay(%v, %v): want 0 <= min <= max", min, max))
	}
	i.mu.Lock()
	i.minDelay, i.maxDelay = min, max
	i.mu.Unlock()
}

// Seed returns the seed of the random draws: Options.Seed, or the one
// picked at random when it was 0 (log it to replay a failing test).
func (i *Injector) Seed() uint64 { return i.seed }

// Stats returns what the Injector did so far.
func (i *Injector) Stats() Stats {
	return Stats{
		Calls: i.calls.Load(), Failures: i.failures.Load(), Delayed: i.delayed.Load(),
		Messages: i.messages.Load(), Dropped: i.dropped.Load(),
	}
}

// draw decides the fate of one call.
func (i *Injector) draw() (delay time.Duration, fail bool) {
	i.calls.Add(1)
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mode == Never {
		return 0, false
	}
	delay = i.minDelay
	if i.maxDelay > i.minDelay {
		delay += time.Duration(i.rng.Int64N(int64(i.maxDelay-i.minDelay) + 1))
	}
	fail = i.mode == Always || i.failureRate > 0 && i.rng.Float64() < i.failureRate
	return delay, fail
}

// before runs the faults of one call named op: the delay, honouring ctx,
// then the failure.
func (i *Injector) before(ctx context.Context, op string) error {
	delay, fail := i.draw()
	if delay > 0 {
		i.delayed.Add(1)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("chaos: %s: %w", op, ctx.Err())
		case <-t.C:
		}
	}
	if fail {
		i.failures.Add(1)
		return fmt.Errorf("%w of %s", ErrInjected, op)
	}
	return nil
}

// beforeNoContext is before for calls without a context (serializers).
func (i *Injector) beforeNoContext(op string) error {
	return i.before(context.Background(), op)
}

// drop decides whether to drop one message.
func (i *Injector) drop() bool {
	i.messages.Add(1)
	i.mu.Lock()
	defer i.mu.Unlock()
	d := i.mode == Always || i.mode == Maybe && i.dropRate > 0 && i.rng.Float64() < i.dropRate
	if d {
		i.dropped.Add(1)
	}
	return d
}
