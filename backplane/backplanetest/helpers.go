package backplanetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
)

// Deadlines: generous, so that the suite passes on a loaded machine against a
// remote server, and short enough that a hang fails the test rather than the
// whole run. Variables only for the suite's own tests (export_test.go),
// whose runs on deliberately flawed in-memory backplanes wait for things
// that never come.
var (
	// waitTimeout bounds the wait for a payload or a state report.
	waitTimeout = 20 * time.Second
	// callTimeout is the context deadline of each call the suite makes.
	callTimeout = 30 * time.Second
	// prompt bounds a call expected to return at once (a done context, a
	// closed or disconnected node).
	prompt = 10 * time.Second
)

// pollEvery is how often a wait looks again.
const pollEvery = 5 * time.Millisecond

type suite struct{ h Harness }

// node makes a node that the test closes when it ends.
func (s suite) node(t *testing.T) backplane.Backplane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	b, err := s.h.MakeBackplane(ctx, t)
	if err != nil {
		t.Fatalf("MakeBackplane: %v", err)
	}
	if b == nil {
		t.Fatal("MakeBackplane returned a nil Backplane and no error")
	}
	t.Cleanup(func() {
		if err, ok := returnsWithin(prompt, b.Close); !ok {
			t.Errorf("Backplane.Close did not return within %v", prompt)
		} else if err != nil {
			t.Errorf("Backplane.Close: %v", err)
		}
	})
	return b
}

// newChannel returns a channel name no other run uses.
func newChannel() string {
	return backplane.ChannelName(fmt.Sprintf("backplanetest-%016x", rand.Uint64()))
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// subscribe subscribes r to channel on b; the test closes the subscription
// when it ends, and checks r then.
func subscribe(t *testing.T, b backplane.Backplane, channel string, r *recorder) backplane.Subscription {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	sub, err := b.Subscribe(ctx, channel, r.onMessage, r.onState)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	if sub == nil {
		t.Fatalf("Subscribe(%q) returned a nil Subscription and no error", channel)
	}
	t.Cleanup(func() {
		if err, ok := returnsWithin(prompt, sub.Close); !ok {
			t.Errorf("Subscription.Close did not return within %v", prompt)
		} else if err != nil {
			t.Errorf("Subscription.Close: %v", err)
		}
		r.check(t)
	})
	return sub
}

func publish(t *testing.T, b backplane.Backplane, channel string, payload []byte) {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	if err := b.Publish(ctx, channel, payload); err != nil {
		t.Fatalf("Publish(%q, %d bytes): %v", channel, len(payload), err)
	}
}

// returnsWithin runs f and reports its result, or false if it does not
// return within d (it is left running).
func returnsWithin[T any](d time.Duration, f func() T) (T, bool) {
	done := make(chan T, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-done:
		return v, true
	case <-timer.C:
		var zero T
		return zero, false
	}
}

// waitUntil polls cond until it holds, failing the test after waitTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(pollEvery)
	}
}

// entry is one callback a recorder saw: a payload, or a state when state is
// not zero.
type entry struct {
	payload []byte
	state   backplane.State
	err     error
}

// recorder is the callbacks of one subscription. It keeps what they got and
// notes contract violations, which check reports.
type recorder struct {
	name     string
	mu       sync.Mutex
	entries  []entry
	problems []string       // distinct, in order of first occurrence
	times    map[string]int // occurrences of each problem
	busy     atomic.Bool    // a callback is running
	closed   atomic.Bool    // the subscription's Close has returned
}

func newRecorder(name string) *recorder { return &recorder{name: name} }

func (r *recorder) onMessage(payload []byte) {
	r.enter("MessageFunc")
	defer r.busy.Store(false)
	r.add(entry{payload: bytes.Clone(payload)})
}

func (r *recorder) onState(state backplane.State, err error) {
	r.enter("StateFunc")
	defer r.busy.Store(false)
	if state == 0 {
		r.problem("StateFunc called with the zero State")
	}
	r.add(entry{state: state, err: err})
}

func (r *recorder) enter(callback string) {
	if r.closed.Load() {
		r.problem(callback + " called after the subscription was closed")
	}
	if !r.busy.CompareAndSwap(false, true) {
		r.problem(callback + " called while another callback of the same subscription was running")
	}
}

func (r *recorder) add(e entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
}

func (r *recorder) problem(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.times == nil {
		r.times = make(map[string]int)
	}
	if r.times[p] == 0 {
		r.problems = append(r.problems, p)
	}
	r.times[p]++
}

// markClosed records that the subscription is closed: from now on any
// callback is a violation.
func (r *recorder) markClosed() { r.closed.Store(true) }

// payloads returns the payloads received so far, in order.
func (r *recorder) payloads() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var p [][]byte
	for _, e := range r.entries {
		if e.state == 0 {
			p = append(p, e.payload)
		}
	}
	return p
}

// states returns the states reported so far, in order.
func (r *recorder) states() []backplane.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []backplane.State
	for _, e := range r.entries {
		if e.state != 0 {
			s = append(s, e.state)
		}
	}
	return s
}

// count returns how many times payload was received.
func (r *recorder) count(payload []byte) int {
	n := 0
	for _, p := range r.payloads() {
		if bytes.Equal(p, payload) {
			n++
		}
	}
	return n
}

// waitPayload waits until payload has been received.
func (r *recorder) waitPayload(t *testing.T, payload []byte) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s to receive %s", r.name, show(payload)), func() bool { return r.count(payload) > 0 })
}

// waitState waits until state has been reported after the first `after`
// states.
func (r *recorder) waitState(t *testing.T, state backplane.State, after int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s to report %v (after %d states)", r.name, state, after), func() bool {
		s := r.states()
		for i := after; i < len(s); i++ {
			if s[i] == state {
				return true
			}
		}
		return false
	})
}

// check reports the violations seen, and a subscription whose first report
// was not Connected, or that reported Connected twice.
func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		t.Errorf("%s: %s (%d times)", r.name, p, r.times[p])
	}
	connected := 0
	for i, e := range r.entries {
		if i == 0 && e.state != backplane.Connected {
			t.Errorf("%s: first callback was %s, want StateFunc(Connected)", r.name, e.describe())
		}
		if e.state == backplane.Connected {
			connected++
		}
	}
	if connected > 1 {
		t.Errorf("%s: Connected reported %d times, want once", r.name, connected)
	}
}

func (e entry) describe() string {
	if e.state != 0 {
		return fmt.Sprintf("StateFunc(%v, %v)", e.state, e.err)
	}
	return "MessageFunc(" + show(e.payload) + ")"
}

// show describes a payload for a message.
func show(p []byte) string {
	if len(p) > 40 {
		return fmt.Sprintf("%d-byte payload %q...", len(p), p[:40])
	}
	return fmt.Sprintf("payload %q", p)
}

// sameBytes compares two payload lists; nil and empty payloads are equal.
func sameBytes(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func showAll(ps [][]byte) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(p) > 40 {
			fmt.Fprintf(&b, "<%d bytes>", len(p))
		} else {
			fmt.Fprintf(&b, "%q", p)
		}
	}
	b.WriteByte(']')
	return b.String()
}
