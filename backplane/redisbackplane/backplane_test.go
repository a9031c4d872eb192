package redisbackplane_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/internal/redistest"
)

// recorder keeps what a subscription's callbacks received.
type recorder struct {
	mu       sync.Mutex
	states   []backplane.State
	errs     []error
	payloads [][]byte
}

func (r *recorder) onMessage(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.payloads = append(r.payloads, bytes.Clone(p))
}

func (r *recorder) onState(s backplane.State, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
	r.errs = append(r.errs, err)
}

func (r *recorder) has(p string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.payloads {
		if string(q) == p {
			return true
		}
	}
	return false
}

// stateAfter reports whether s was reported after the first n states.
func (r *recorder) stateAfter(s backplane.State, n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := n; i < len(r.states); i++ {
		if r.states[i] == s {
			return true
		}
	}
	return false
}

func (r *recorder) numStates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.states)
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNode returns a backplane on a client of its own with the given options
// (Addr defaults to the test server), closed when the test ends.
func newNode(t *testing.T, copts *redis.Options, opts *redisbackplane.Options) *redisbackplane.Backplane {
	t.Helper()
	b, err := redisbackplane.New(redistest.NewClient(t, copts), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func subscribe(t *testing.T, b backplane.Backplane, ch string) *recorder {
	t.Helper()
	r := &recorder{}
	sub, err := b.Subscribe(ctxFor(t), ch, r.onMessage, r.onState)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return r
}

// publishUntil publishes numbered payloads every 50ms until r receives one,
// which it returns.
func publishUntil(t *testing.T, b backplane.Backplane, ch string, r *recorder, prefix string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		p := fmt.Sprintf("%s-%d", prefix, i)
		if err := b.Publish(ctxFor(t), ch, []byte(p)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if waitBriefly(func() bool { return r.has(p) }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s payload delivered within 20s", prefix)
		}
	}
}

func waitBriefly(cond func() bool) bool {
	for range 10 {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func TestNewOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: redistest.Unreachable})
	defer c.Close()
	if _, err := redisbackplane.New(nil, nil); err == nil {
		t.Error("New(nil, nil) succeeded, want an error")
	}
	_, err := redisbackplane.New(c, &redisbackplane.Options{HealthCheckInterval: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "HealthCheckInterval") {
		t.Errorf("New with a negative HealthCheckInterval = %v, want an error naming the field", err)
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": redistest.Unreachable}})
	defer ring.Close()
	if _, err := redisbackplane.New(ring, nil); err == nil || !strings.Contains(err.Error(), "Ring") {
		t.Errorf("New with a *redis.Ring = %v, want an error saying Ring is not supported", err)
	}
	b, err := redisbackplane.New(c, &redisbackplane.Options{})
	if err != nil {
		t.Fatalf("New with zero Options: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the backplane leaves the user's client open.
	if err := c.Close(); err != nil {
		t.Errorf("the user's client was closed by the backplane: %v", err)
	}
}

// pubsubConnIDs returns the ids of the server's pub/sub connections named
// name (CLIENT LIST TYPE pubsub).
func pubsubConnIDs(t *testing.T, admin *redis.Client, name string) []string {
	t.Helper()
	list, err := admin.Do(ctxFor(t), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	var ids []string
	for line := range strings.Lines(list) {
		var id string
		named := false
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "name="+name {
				named = true
			}
		}
		if named && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestClientKill: the server kills the subscription's connection (as a
// restart, a failover or an administrator would) twice; each time the
// subscription reports Disconnected then Reconnected, and payloads flow
// again on the same Backplane.
func TestClientKill(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			name := "strata-test-" + redistest.Unique()
			opts := &redisbackplane.Options{Sharded: sharded}
			node := newNode(t, &redis.Options{ClientName: name}, opts)
			pub := newNode(t, nil, opts)
			admin := redistest.NewClient(t, nil)
			ch := backplane.ChannelName("kill-" + redistest.Unique())
			r := subscribe(t, node, ch)
			publishUntil(t, pub, ch, r, "before")

			for round := range 2 {
				ids := pubsubConnIDs(t, admin, name)
				if len(ids) != 1 {
					t.Fatalf("round %d: found %d pub/sub connections named %s, want 1", round, len(ids), name)
				}
				n := r.numStates()
				if err := admin.Do(ctxFor(t), "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
					t.Fatalf("CLIENT KILL ID %s: %v", ids[0], err)
				}
				waitFor(t, "Disconnected", func() bool { return r.stateAfter(backplane.Disconnected, n) })
				waitFor(t, "Reconnected", func() bool { return r.stateAfter(backplane.Reconnected, n) })
				publishUntil(t, pub, ch, r, fmt.Sprintf("after-kill-%d", round))
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			want := []backplane.State{backplane.Connected, backplane.Disconnected, backplane.Reconnected, backplane.Disconnected, backplane.Reconnected}
			if fmt.Sprint(r.states) != fmt.Sprint(want) {
				t.Errorf("states = %v, want %v", r.states, want)
			}
			if r.errs[1] == nil || r.errs[3] == nil {
				t.Errorf("Disconnected reported without its cause: %v", r.errs)
			}
		})
	}
}

// TestHealthCheck: when the network path silently stops carrying bytes
// (the connection stays open: no error from the OS), the unanswered
// health-check PING reports Disconnected, and Reconnected follows once
// the path works again.
func TestHealthCheck(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	node := newNode(t, &redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second},
		&redisbackplane.Options{HealthCheckInterval: 200 * time.Millisecond})
	pub := newNode(t, nil, nil)
	ch := backplane.ChannelName("health-" + redistest.Unique())
	r := subscribe(t, node, ch)
	publishUntil(t, pub, ch, r, "before")

	proxy.SetLatency(time.Hour) // a black hole
	waitFor(t, "Disconnected", func() bool { return r.stateAfter(backplane.Disconnected, 1) })
	r.mu.Lock()
	cause := r.errs[1]
	r.mu.Unlock()
	if cause == nil || !strings.Contains(cause.Error(), "PING") {
		t.Errorf("Disconnected cause = %v, want the unanswered PING", cause)
	}
	proxy.SetLatency(0)
	waitFor(t, "Reconnected", func() bool { return r.stateAfter(backplane.Reconnected, 2) })
	publishUntil(t, pub, ch, r, "after")
}

// TestSlowServer: with every byte to and from Redis late by seconds,
// Publish and Subscribe return soon after their context's deadline or
// cancellation, with an error wrapping the context's error, and the node
// works again once the server is fast.
func TestSlowServer(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	node := newNode(t, &redis.Options{Addr: proxy.Addr()}, nil)
	pub := newNode(t, nil, nil)
	ch := backplane.ChannelName("slow-" + redistest.Unique())
	if err := node.Publish(ctxFor(t), ch, []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	proxy.SetLatency(3 * time.Second)
	calls := map[string]func(context.Context) error{
		"Publish": func(ctx context.Context) error { return node.Publish(ctx, ch, []byte("slow")) },
		"Subscribe": func(ctx context.Context) error {
			sub, err := node.Subscribe(ctx, ch, func([]byte) {}, nil)
			if err == nil {
				_ = sub.Close()
			}
			return err
		},
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
	r := subscribe(t, node, ch)
	publishUntil(t, pub, ch, r, "fast-again")
	waitFor(t, "Publish to succeed", func() bool { return node.Publish(ctxFor(t), ch, []byte("x")) == nil })
}

// TestSubscriptionCloseDuringOutage: a subscription closed while its
// connection is down (redials failing) closes promptly.
func TestSubscriptionCloseDuringOutage(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	node := newNode(t, &redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second}, nil)
	r := &recorder{}
	sub, err := node.Subscribe(ctxFor(t), backplane.ChannelName("outage-"+redistest.Unique()), r.onMessage, r.onState)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	waitFor(t, "Disconnected", func() bool { return r.stateAfter(backplane.Disconnected, 1) })
	start := time.Now()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Subscription.Close during an outage took %v", d)
	}
	n := r.numStates()
	time.Sleep(100 * time.Millisecond)
	if r.numStates() != n {
		t.Error("a state was reported after Subscription.Close returned")
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
}
