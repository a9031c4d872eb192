package rabbitbackplane_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
	"github.com/stratacache/strata/internal/rabbittest"
)

// exchanges records the channels (exchanges) a test used, to delete them
// when it ends: the Backplane declares them not auto-deleted.
type exchanges struct {
	mu    sync.Mutex
	names []string
}

func (e *exchanges) add(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.names, name) {
		e.names = append(e.names, name)
	}
}

// cleanup deletes the recorded exchanges when t ends.
func (e *exchanges) cleanup(t *testing.T, url string) {
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		rabbittest.DeleteExchanges(t, url, e.names)
	})
}

// node is a Backplane that records the channels it is used on.
type node struct {
	*rabbitbackplane.Backplane
	ex     *exchanges
	dialer *rabbittest.Dialer
}

func (n node) Publish(ctx context.Context, channel string, payload []byte) error {
	n.ex.add(channel)
	return n.Backplane.Publish(ctx, channel, payload)
}

func (n node) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	n.ex.add(channel)
	return n.Backplane.Subscribe(ctx, channel, onMessage, onState)
}

// harness makes each node with its own named connection, dialled by a
// rabbittest.Dialer the test can refuse.
type harness struct {
	url string
	ex  *exchanges
}

// LooseCrossPublisherOrder: without Options.Confirm, Publish returns once
// the payload is in the socket, so another node's payload published after
// it may reach the exchange first (the URL harness, with confirm=true,
// checks the order).
func (harness) LooseCrossPublisherOrder() bool { return true }

func newNode(ctx context.Context, url string, ex *exchanges, opts *rabbitbackplane.Options) (node, error) {
	d := &rabbittest.Dialer{URL: url, Name: "strata-test-" + rand.Text()[:12]}
	var o rabbitbackplane.Options
	if opts != nil {
		o = *opts
	}
	o.Dial = d.Dial
	o.MinBackoff, o.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	b, err := rabbitbackplane.New(ctx, "", &o)
	if err != nil {
		return node{}, err
	}
	return node{b, ex, d}, nil
}

func (h harness) MakeBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	return newNode(ctx, h.url, h.ex, nil)
}

// Disconnect refuses the node's reconnects and closes its connection from
// the server side with rabbitmqctl (or, without rabbitmqctl, its socket
// from the client side).
func (h harness) Disconnect(ctx context.Context, t *testing.T, b backplane.Backplane) error {
	n := b.(node)
	if !rabbittest.HaveCtl() {
		t.Log("no rabbitmqctl: cutting the socket from the client side instead")
		n.dialer.Cut()
		return nil
	}
	n.dialer.Refuse()
	closed, err := rabbittest.CloseConnection(ctx, n.dialer.Name)
	if err == nil && closed != 1 {
		err = fmt.Errorf("closed %d connections named %q, want 1", closed, n.dialer.Name)
	}
	return err
}

// Holdings counts, with rabbitmqctl, the channels b's connection has open
// and the queues it owns; without rabbitmqctl it counts nothing.
func (h harness) Holdings(ctx context.Context, t *testing.T, b backplane.Backplane, _ string) (map[string]int, error) {
	if !rabbittest.HaveCtl() {
		t.Log("no rabbitmqctl: the server's side is not counted")
		return nil, nil
	}
	channels, queues, err := rabbittest.Holdings(ctx, b.(node).dialer.Name)
	return map[string]int{"channels of the node's connection": channels, "queues it owns": queues}, err
}

func (h harness) Reconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(node).dialer.Restore()
	return nil
}

// MakeUnreachableBackplane returns a node whose server went away for good:
// its socket cut and every reconnect refused.
func (h harness) MakeUnreachableBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	n, err := newNode(ctx, h.url, h.ex, nil)
	if err != nil {
		return nil, err
	}
	n.dialer.Cut()
	return n, nil
}

func TestConformance(t *testing.T) {
	url := rabbittest.URL(t)
	ex := &exchanges{}
	ex.cleanup(t, url)
	backplanetest.Run(t, harness{url: url, ex: ex})
}

// urlHarness makes nodes with backplane.Open.
type urlHarness struct {
	url string
	ex  *exchanges
}

func (h urlHarness) MakeBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	b, err := backplane.Open(ctx, h.url)
	if err != nil {
		return nil, err
	}
	return node{b.(*rabbitbackplane.Backplane), h.ex, nil}, nil
}

// MakeUnreachableBackplane opens a URL where nothing listens: Open fails.
func (h urlHarness) MakeUnreachableBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	return backplane.Open(ctx, "amqp://guest:guest@127.0.0.1:1/")
}

func TestConformanceOpenedByURL(t *testing.T) {
	url := rabbittest.URL(t)
	ex := &exchanges{}
	ex.cleanup(t, url)
	backplanetest.Run(t, urlHarness{url: url + "?connection_name=strata-conformance&confirm=true", ex: ex})
}
