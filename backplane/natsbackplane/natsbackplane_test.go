package natsbackplane_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/natsbackplane"
	"github.com/stratacache/strata/internal/natstest"
)

func testChannel() string {
	return backplane.ChannelName(fmt.Sprintf("natsbackplane-test-%016x", rand.Uint64()))
}

// events records what a subscription's callbacks got.
type events struct {
	mu       sync.Mutex
	payloads []string
	states   []backplane.State
	errs     []error
}

func (e *events) onMessage(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.payloads = append(e.payloads, string(p))
}

func (e *events) onState(s backplane.State, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.states = append(e.states, s)
	e.errs = append(e.errs, err)
}

func (e *events) has(s backplane.State) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.states {
		if x == s {
			return true, e.errs[i]
		}
	}
	return false, nil
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

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestSlowConsumerReportsLost: a subscription whose queue overflows while
// its callback is blocked reports Lost, then goes on delivering.
func TestSlowConsumerReportsLost(t *testing.T) {
	url := natstest.URL(t)
	nc, err := connect(t, url)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := connect(t, url)
	if err != nil {
		t.Fatal(err)
	}
	b, err := natsbackplane.New(nc, &natsbackplane.Options{QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ch := testChannel()
	release := make(chan struct{})
	var once sync.Once
	var ev events
	sub, err := b.Subscribe(ctx(t), ch, func(p []byte) {
		once.Do(func() { <-release })
		ev.onMessage(p)
	}, ev.onState)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range 100 {
		if err := pub.Publish(ch, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // all 100 have reached nc: most were dropped
		t.Fatal(err)
	}
	close(release)
	waitFor(t, "Lost", func() bool { ok, _ := ev.has(backplane.Lost); return ok })
	if _, err := ev.has(backplane.Lost); !errors.Is(err, natsbackplane.ErrSlowConsumer) {
		t.Errorf("Lost reported with %v, want an error wrapping ErrSlowConsumer", err)
	}
	// Delivery resumes: a payload published after the loss arrives. The
	// bounded queue may still be draining the backlog and drop a payload
	// sent at once, so publish again until one gets through.
	last := time.Time{}
	waitFor(t, "a payload after the loss", func() bool {
		if time.Since(last) > 100*time.Millisecond {
			if err := pub.Publish(ch, []byte("after")); err != nil {
				t.Fatal(err)
			}
			last = time.Now()
		}
		return ev.received("after")
	})
}

// TestCloseLeavesUserConnection: Close of a Backplane made by New leaves
// the caller's connection open and usable, and no goroutine behind.
func TestCloseLeavesUserConnection(t *testing.T) {
	nc, err := connect(t, natstest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := natsbackplane.New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ev events
	for range 3 {
		if _, err := b.Subscribe(ctx(t), testChannel(), ev.onMessage, ev.onState); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !nc.IsConnected() {
		t.Fatalf("connection status after Close = %v, want CONNECTED", nc.Status())
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("connection unusable after Close: %v", err)
	}
	if n := nc.NumSubscriptions(); n != 0 {
		t.Errorf("%d subscriptions left on the connection after Close", n)
	}
}

// TestUserHandlersKept: the Backplane does not replace the connection's
// disconnect and reconnect handlers.
func TestUserHandlersKept(t *testing.T) {
	p := natstest.NewProxy(t, natstest.HostPort(natstest.URL(t), "4222"))
	disconnects, reconnects := make(chan struct{}, 10), make(chan struct{}, 10)
	signal := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	nc, err := nats.Connect(p.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { signal(disconnects) }),
		nats.ReconnectHandler(func(*nats.Conn) { signal(reconnects) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := natsbackplane.New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var ev events
	if _, err := b.Subscribe(ctx(t), testChannel(), ev.onMessage, ev.onState); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	<-disconnects
	waitFor(t, "Disconnected", func() bool { ok, _ := ev.has(backplane.Disconnected); return ok })
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	<-reconnects
	waitFor(t, "Reconnected", func() bool { ok, _ := ev.has(backplane.Reconnected); return ok })
}

// TestConnectionClosedReportsDisconnected: closing the caller's connection
// under the Backplane is reported, and Publish fails fast.
func TestConnectionClosedReportsDisconnected(t *testing.T) {
	nc, err := connect(t, natstest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := natsbackplane.New(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var ev events
	ch := testChannel()
	if _, err := b.Subscribe(ctx(t), ch, ev.onMessage, ev.onState); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	waitFor(t, "Disconnected", func() bool { ok, _ := ev.has(backplane.Disconnected); return ok })
	if err := b.Publish(ctx(t), ch, []byte("x")); !errors.Is(err, natsbackplane.ErrNotConnected) {
		t.Errorf("Publish on a closed connection = %v, want an error wrapping ErrNotConnected", err)
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := natsbackplane.New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	nc, err := connect(t, natstest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []natsbackplane.Options{{QueueSize: -1}, {FlushTimeout: -time.Second}} {
		if _, err := natsbackplane.New(nc, &o); err == nil || !strings.Contains(err.Error(), "Options.") {
			t.Errorf("New(%+v) = %v, want an error naming the field", o, err)
		}
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"nats://h:4222?bucket=b", `unknown parameter "bucket"`},
		{"nats://h:4222/path", "want nats://"},
		{"nats://h:4222?connect_timeout=soon", "connect_timeout"},
		{"nats://h:4222?connect_timeout=-1s", "connect_timeout"},
		{"nats://h:4222?max_reconnects=x", "max_reconnects"},
		{"nats://h:4222?queue_size=0", "queue_size"},
		{"nats://h:4222?tls=maybe", "tls"},
		{"nats://h:4222?tls_cert=a", "tls_cert and tls_key"},
		{"nats://h1:4222,,h2:4222", "empty host"},
		{"nats://user:s3cret@127.0.0.1:1?name=x&nope=1", `unknown parameter "nope"`},
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

// TestOpenUnreachable: Open of a server that is not there fails within its
// context, without revealing the password.
func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := backplane.Open(c, "nats://u:s3cret@"+natstest.ClosedAddr(t)+","+natstest.ClosedAddr(t))
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error reveals the password: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v", d)
	}
}

// TestOpenURLForms: several servers, a token, user and password; the first
// reachable server is used.
func TestOpenURLForms(t *testing.T) {
	raw := natstest.URL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	host := u.Host
	for _, form := range []string{
		"nats://" + natstest.ClosedAddr(t) + "," + host + "?connect_timeout=1s",
		"nats://" + host + "/?name=x&queue_size=10&flush_timeout=3s&reconnect_wait=100ms&max_reconnects=5",
	} {
		b, err := backplane.Open(ctx(t), form)
		if err != nil {
			t.Errorf("Open(%q): %v", form, err)
			continue
		}
		ch := testChannel()
		var ev events
		sub, err := b.Subscribe(ctx(t), ch, ev.onMessage, ev.onState)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx(t), ch, []byte("own")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "own payload", func() bool { return ev.received("own") })
		_ = sub.Close()
		_ = b.Close()
	}
}

// TestOpenCtxDone: a done context is an error wrapping it.
func TestOpenCtxDone(t *testing.T) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := backplane.Open(c, natstest.URL(t))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context = %v, want context.Canceled", err)
	}
}
