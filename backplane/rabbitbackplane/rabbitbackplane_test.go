package rabbitbackplane_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
	"github.com/stratacache/strata/internal/rabbittest"
)

func testChannel(ex *exchanges) string {
	ch := backplane.ChannelName(fmt.Sprintf("rabbitbackplane-test-%016x", rand.Uint64()))
	ex.add(ch)
	return ch
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// events records what a subscription's callbacks got.
type events struct {
	mu       sync.Mutex
	payloads []string
	states   []backplane.State
}

func (e *events) onMessage(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.payloads = append(e.payloads, string(p))
}

func (e *events) onState(s backplane.State, _ error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.states = append(e.states, s)
}

func (e *events) count(s backplane.State) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.states {
		if x == s {
			n++
		}
	}
	return n
}

func (e *events) received(p string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.payloads {
		if x == p {
			return true
		}
	}
	return false
}

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

// TestReconnectRestoresEverySubscription: after the socket is cut, every
// subscription reports Disconnected then Reconnected once, Publish and
// Subscribe fail fast meanwhile, and messages flow again on every channel
// without making a new Backplane.
func TestReconnectRestoresEverySubscription(t *testing.T) {
	url := rabbittest.URL(t)
	ex := &exchanges{}
	ex.cleanup(t, url)
	a, err := newNode(ctx(t), url, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := newNode(ctx(t), url, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	chans := []string{testChannel(ex), testChannel(ex)}
	evs := make([]*events, 4)
	for i := range evs {
		evs[i] = &events{}
		if _, err := b.Subscribe(ctx(t), chans[i%2], evs[i].onMessage, evs[i].onState); err != nil {
			t.Fatal(err)
		}
	}
	b.dialer.Cut()
	for i, e := range evs {
		waitFor(t, fmt.Sprintf("subscription %d: Disconnected", i), func() bool { return e.count(backplane.Disconnected) == 1 })
	}
	if err := b.Publish(ctx(t), chans[0], []byte("down")); !errors.Is(err, rabbitbackplane.ErrNotConnected) {
		t.Errorf("Publish while disconnected = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(ctx(t), chans[0], func([]byte) {}, nil); !errors.Is(err, rabbitbackplane.ErrNotConnected) {
		t.Errorf("Subscribe while disconnected = %v, want ErrNotConnected", err)
	}
	b.dialer.Restore()
	for i, e := range evs {
		waitFor(t, fmt.Sprintf("subscription %d: Reconnected", i), func() bool { return e.count(backplane.Reconnected) == 1 })
	}
	for i := range chans {
		if err := a.Publish(ctx(t), chans[i], fmt.Appendf(nil, "after-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range evs {
		waitFor(t, fmt.Sprintf("subscription %d: a payload after the reconnect", i), func() bool { return e.received(fmt.Sprintf("after-%d", i%2)) })
		if n := e.count(backplane.Connected); n != 1 {
			t.Errorf("subscription %d reported Connected %d times", i, n)
		}
	}
}

// TestCloseWhileReconnecting: Close ends the reconnect loop at once and
// leaves no goroutine.
func TestCloseWhileReconnecting(t *testing.T) {
	url := rabbittest.URL(t)
	ex := &exchanges{}
	ex.cleanup(t, url)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := newNode(ctx(t), url, ex, &rabbitbackplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var e events
	if _, err := b.Subscribe(ctx(t), testChannel(ex), e.onMessage, e.onState); err != nil {
		t.Fatal(err)
	}
	b.dialer.Cut()
	waitFor(t, "Disconnected", func() bool { return e.count(backplane.Disconnected) == 1 })
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// TestExchangeDeletedUnderPublisher: when the exchange is deleted behind
// the Backplane's back, the server closes the publishing channel; Publish
// opens another one and declares the exchange again.
func TestExchangeDeletedUnderPublisher(t *testing.T) {
	url := rabbittest.URL(t)
	ex := &exchanges{}
	ex.cleanup(t, url)
	b, err := newNode(ctx(t), url, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ch := testChannel(ex)
	if err := b.Publish(ctx(t), ch, []byte("first")); err != nil {
		t.Fatal(err)
	}
	rabbittest.DeleteExchanges(t, url, []string{ch})
	// A publish to the deleted exchange makes the server close the channel
	// (asynchronously); later ones must work again.
	var e events
	c, err := b.Backplane.Subscribe(ctx(t), ch, e.onMessage, e.onState)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "a payload after the exchange was deleted", func() bool {
		_ = b.Publish(ctx(t), ch, []byte("again"))
		time.Sleep(20 * time.Millisecond)
		return e.received("again")
	})
}

func TestNewOptions(t *testing.T) {
	dial := func(context.Context) (*amqp.Connection, error) { return nil, errors.New("no") }
	for _, tc := range []struct {
		url  string
		opts rabbitbackplane.Options
		want string
	}{
		{"", rabbitbackplane.Options{}, "no URL and no Options.Dial"},
		{"amqp://h", rabbitbackplane.Options{Dial: dial}, "both"},
		{"amqp://h", rabbitbackplane.Options{Prefetch: -1}, "Options.Prefetch"},
		{"amqp://h", rabbitbackplane.Options{MaxQueueLength: -1}, "Options.MaxQueueLength"},
		{"amqp://h", rabbitbackplane.Options{MinBackoff: -1}, "Options.MinBackoff"},
		{"amqp://h", rabbitbackplane.Options{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "Options.MaxBackoff"},
		{"http://h", rabbitbackplane.Options{}, "bad URL"},
		{"", rabbitbackplane.Options{Dial: dial}, "connect to Options.Dial: no"},
	} {
		if _, err := rabbitbackplane.New(context.Background(), tc.url, &tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %+v) = %v, want an error containing %q", tc.url, tc.opts, err, tc.want)
		}
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"amqp://h?bucket=b", `unknown parameter "bucket"`},
		{"amqp://h?prefetch=0", "prefetch"},
		{"amqp://h?max_queue_length=x", "max_queue_length"},
		{"amqp://h?confirm=maybe", "confirm"},
		{"amqp://h?reconnect_min=0s", "reconnect_min"},
		{"amqps://u:s3cret@h?nope=1", `unknown parameter "nope"`},
	} {
		_, err := backplane.Open(context.Background(), tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error reveals the password: %v", tc.url, err)
		}
	}
}

// TestOpenUnreachable: Open of a server that does not answer fails within
// its context, without revealing the password.
func TestOpenUnreachable(t *testing.T) {
	// A listener that accepts but never speaks AMQP: the handshake must not
	// hang past the context.
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := backplane.Open(c, "amqp://u:s3cret@"+silentServer(t)+"/")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open of a silent server = %v, want an error wrapping DeadlineExceeded", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error reveals the password: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v", d)
	}
}

// TestDeliveriesPastThePrefetch: a subscription acknowledges its deliveries
// in batches; the server, which stops sending once Options.Prefetch
// deliveries are unacknowledged, must still get every message through, for
// prefetches that acknowledge each message (1, 2) and in batches (5).
func TestDeliveriesPastThePrefetch(t *testing.T) {
	url := rabbittest.URL(t)
	ex := &exchanges{}
	ex.cleanup(t, url)
	for _, prefetch := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("prefetch ", prefetch), func(t *testing.T) {
			b, err := newNode(ctx(t), url, ex, &rabbitbackplane.Options{Prefetch: prefetch})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ch := testChannel(ex)
			var e events
			s, err := b.Backplane.Subscribe(ctx(t), ch, e.onMessage, e.onState)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const n = 12 * 5
			for i := range n {
				if err := b.Publish(ctx(t), ch, []byte(fmt.Sprint("m", i))); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "every message", func() bool { return e.received(fmt.Sprint("m", n-1)) })
			for i := range n {
				if !e.received(fmt.Sprint("m", i)) {
					t.Errorf("message m%d not received", i)
				}
			}
		})
	}
}
