package natsbackplane_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/natsbackplane"
	"github.com/stratacache/strata/internal/natstest"
)

// harness makes each node on its own connection, through its own proxy to
// the test server, so that Disconnect can cut one node off.
type harness struct {
	server string     // host:port of the real server
	probe  *nats.Conn // straight to the server, for Holdings

	mu      sync.Mutex
	proxies map[backplane.Backplane]*natstest.Proxy
	conns   map[backplane.Backplane]*nats.Conn
}

func newHarness(t *testing.T) *harness {
	probe, err := connect(t, natstest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	// The first request starts the client's response subscription and its
	// goroutine, which the suite must not take for a leak.
	_, _ = probe.Request("strata-conformance-nobody", nil, time.Second)
	return &harness{
		server:  natstest.HostPort(natstest.URL(t), "4222"),
		probe:   probe,
		proxies: make(map[backplane.Backplane]*natstest.Proxy),
		conns:   make(map[backplane.Backplane]*nats.Conn),
	}
}

// connect connects to url with quick reconnects, and closes the connection
// when the test ends.
func connect(t *testing.T, url string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond),
		nats.Timeout(2*time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}), // slow consumers: not on stderr
	)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	return nc, nil
}

func (h *harness) MakeBackplane(ctx context.Context, t *testing.T) (backplane.Backplane, error) {
	p := natstest.NewProxy(t, h.server)
	nc, err := connect(t, p.URL())
	if err != nil {
		return nil, err
	}
	b, err := natsbackplane.New(nc, nil)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.proxies[b] = p
	h.conns[b] = nc
	h.mu.Unlock()
	return b, nil
}

// Holdings counts the subscriptions of b's connection (each one the client
// holds is one the server holds) and whether the server has interest in
// channel from anyone: a request on it either finds no responders at once
// (0) or reaches a subscriber that does not answer (1).
func (h *harness) Holdings(ctx context.Context, _ *testing.T, b backplane.Backplane, channel string) (map[string]int, error) {
	h.mu.Lock()
	nc, ok := h.conns[b]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no connection for %p", b)
	}
	// The server has processed what b's connection sent (its UNSUBs)
	// once a round trip on it returns.
	if err := nc.FlushWithContext(ctx); err != nil {
		return nil, err
	}
	interest := 1
	rctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	_, err := h.probe.RequestWithContext(rctx, channel, nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		interest = 0
	case err != nil && rctx.Err() == nil:
		return nil, err
	}
	return map[string]int{
		"subscriptions of the node's connection": nc.NumSubscriptions(),
		"server interest in the channel":         interest,
	}, nil
}

func (h *harness) proxy(b backplane.Backplane) (*natstest.Proxy, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.proxies[b]
	if p == nil {
		return nil, fmt.Errorf("no proxy for %p", b)
	}
	return p, nil
}

func (h *harness) Disconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	p, err := h.proxy(b)
	if err != nil {
		return err
	}
	p.Cut()
	return nil
}

func (h *harness) Reconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	p, err := h.proxy(b)
	if err != nil {
		return err
	}
	return p.Restore()
}

// MakeUnreachableBackplane returns a node whose server went away for good:
// connected through a proxy that is then cut and never restored.
func (h *harness) MakeUnreachableBackplane(ctx context.Context, t *testing.T) (backplane.Backplane, error) {
	p := natstest.NewProxy(t, h.server)
	nc, err := connect(t, p.URL())
	if err != nil {
		return nil, err
	}
	b, err := natsbackplane.New(nc, nil)
	if err != nil {
		return nil, err
	}
	p.Cut()
	for nc.Status() == nats.CONNECTED {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b, nil
}

func TestConformance(t *testing.T) {
	backplanetest.Run(t, newHarness(t))
}

// urlHarness makes nodes with backplane.Open, each owning its connection.
type urlHarness struct{ url string }

// LooseCrossPublisherOrder: a NATS publish returns once the client has
// buffered the message; another node's message buffered just before may
// reach the server after it (docs/nats.md).
func (*harness) LooseCrossPublisherOrder() bool   { return true }
func (urlHarness) LooseCrossPublisherOrder() bool { return true }

func (h urlHarness) MakeBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	return backplane.Open(ctx, h.url)
}

// MakeUnreachableBackplane opens a URL where nothing listens: Open fails.
func (h urlHarness) MakeUnreachableBackplane(ctx context.Context, t *testing.T) (backplane.Backplane, error) {
	return backplane.Open(ctx, "nats://"+natstest.ClosedAddr(t))
}

func TestConformanceOpenedByURL(t *testing.T) {
	backplanetest.Run(t, urlHarness{natstest.URL(t) + "?name=strata-conformance"})
}
