// Package toxitest runs a Toxiproxy server inside the test process, on
// 127.0.0.1 only, and puts a proxy of its own between each node of a test
// cluster and each server that node talks to (Redis, NATS, RabbitMQ), so
// that a test or a drill can play network failures against the real
// servers: take one proxy, one node's proxies or one service's proxies down
// and back up (connections are closed and new ones refused, on the same
// port), add latency, black-hole a connection, throttle its bandwidth, or
// close it after some bytes.
//
// Each proxy carries labels — the node it serves, the role of the
// connection ("l2", "backplane") and the service behind it ("redis",
// "nats", "amqp") — and every fault takes a Match selecting proxies by
// those labels: Match{Node: "node-2"} partitions a node from everything,
// Match{Role: RoleL2} takes L2 down for every node.
//
// The Toxiproxy API (github.com/Shopify/toxiproxy/v2/client) drives the
// proxies, as it would an external toxiproxy-server; Client returns it for
// toxics this package has no helper for. Toxiproxy's own logging is
// silenced (zerolog's global level is raised to errors).
package toxitest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Roles of a proxy: what the node uses the connection for.
const (
	RoleL2        = "l2"
	RoleBackplane = "backplane"
)

// Server is an in-process Toxiproxy server and the proxies made through
// it. Its methods are safe for concurrent use.
type Server struct {
	api    *toxiproxy.ApiServer
	http   *http.Server
	ln     net.Listener
	served chan struct{}
	client *toxiclient.Client

	mu      sync.Mutex
	proxies []*Proxy
	closed  bool
}

// Proxy is one proxy, between one node and one server.
type Proxy struct {
	// Node, Role and Service are the labels a Match selects on.
	Node, Role, Service string
	// Upstream is the server's address.
	Upstream string

	name, addr string
	mu         sync.Mutex // serialises the API calls that update p
	p          *toxiclient.Proxy
}

// Match selects proxies by their labels; an empty field matches any
// value, so the zero Match selects every proxy.
type Match struct {
	Node, Role, Service string
}

func (m Match) matches(p *Proxy) bool {
	return (m.Node == "" || m.Node == p.Node) && (m.Role == "" || m.Role == p.Role) &&
		(m.Service == "" || m.Service == p.Service)
}

// New starts a Toxiproxy server whose API listens on a free 127.0.0.1
// port. Close stops it.
func New() (*Server, error) {
	zerolog.SetGlobalLevel(zerolog.ErrorLevel) // toxics log through the global logger
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("toxitest: listen: %w", err)
	}
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	s := &Server{api: api, ln: ln, served: make(chan struct{}),
		http:   &http.Server{Handler: api.Routes(), ReadHeaderTimeout: 10 * time.Second},
		client: toxiclient.NewClient(ln.Addr().String())}
	go func() {
		defer close(s.served)
		_ = s.http.Serve(ln)
	}()
	return s, nil
}

// Start is New for a test: it fails tb if the server cannot start and
// closes it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("toxitest: close: %v", err)
		}
	})
	return s
}

// Addr is the address of the Toxiproxy API.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Client returns a Toxiproxy API client for this server.
func (s *Server) Client() *toxiclient.Client { return s.client }

// NewProxy makes a proxy to upstream, listening on a free 127.0.0.1 port,
// labelled with node, role and service. Its name is derived from the
// labels and must be unique.
func (s *Server) NewProxy(node, role, service, upstream string) (*Proxy, error) {
	name := fmt.Sprintf("%s.%s.%s", node, role, service)
	p, err := s.client.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		return nil, fmt.Errorf("toxitest: create proxy %s: %w", name, err)
	}
	px := &Proxy{Node: node, Role: role, Service: service, Upstream: upstream, name: name, addr: p.Listen, p: p}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("toxitest: server closed")
	}
	s.proxies = append(s.proxies, px)
	return px, nil
}

// Addr is the host:port clients dial to reach the upstream through the
// proxy. It stays the same when the proxy is taken down and back up.
func (p *Proxy) Addr() string { return p.addr }

// Name is the proxy's name in the Toxiproxy API.
func (p *Proxy) Name() string { return p.name }

// Select returns the proxies m matches, in the order they were made.
func (s *Server) Select(m Match) []*Proxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Proxy
	for _, p := range s.proxies {
		if m.matches(p) {
			out = append(out, p)
		}
	}
	return out
}

// each applies f to every proxy m matches and returns the errors joined;
// matching nothing is an error (a mistyped label must not make a test pass
// without its fault).
func (s *Server) each(m Match, f func(*Proxy) error) error {
	ps := s.Select(m)
	if len(ps) == 0 {
		return fmt.Errorf("toxitest: no proxy matches %+v", m)
	}
	var errs []error
	for _, p := range ps {
		if err := f(p); err != nil {
			errs = append(errs, fmt.Errorf("toxitest: %s: %w", p.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Down takes the matched proxies down: their connections are closed, as
// by a network failure or a server that went away, and new ones are
// refused until Up.
func (s *Server) Down(m Match) error {
	return s.each(m, func(p *Proxy) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.p.Disable()
	})
}

// Up brings the matched proxies back, on the same ports. Bringing up a
// proxy that is up does nothing.
func (s *Server) Up(m Match) error {
	return s.each(m, func(p *Proxy) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.p.Enabled {
			return nil
		}
		return p.p.Enable()
	})
}

// Direction of a toxic: Downstream is from the server to the client (its
// replies, the messages it pushes), Upstream from the client to the
// server.
const (
	Downstream = "downstream"
	Upstream   = "upstream"
)

// AddToxic adds a toxic named name of type typ (latency, bandwidth,
// slicer, timeout, limit_data, reset_peer, slow_close: see Toxiproxy's
// README) with attrs on stream (Downstream or Upstream) of every matched
// proxy, for all its connections, current and new.
func (s *Server) AddToxic(m Match, name, typ, stream string, attrs toxiclient.Attributes) error {
	return s.each(m, func(p *Proxy) error {
		_, err := p.p.AddToxic(name, typ, stream, 1, attrs)
		return err
	})
}

// Latency delays everything the matched proxies forward by d (± jitter),
// both ways: a request and its reply are each late by d.
func (s *Server) Latency(m Match, d, jitter time.Duration) error {
	attrs := toxiclient.Attributes{"latency": d.Milliseconds(), "jitter": jitter.Milliseconds()}
	return errors.Join(s.AddToxic(m, "latency-down", "latency", Downstream, attrs),
		s.AddToxic(m, "latency-up", "latency", Upstream, attrs))
}

// BlackHole makes the matched proxies swallow everything both ways while
// keeping their connections open, as a silently failed network path does;
// Clear ends it.
func (s *Server) BlackHole(m Match) error {
	attrs := toxiclient.Attributes{"timeout": 0}
	return errors.Join(s.AddToxic(m, "blackhole-down", "timeout", Downstream, attrs),
		s.AddToxic(m, "blackhole-up", "timeout", Upstream, attrs))
}

// Clear removes every toxic from the matched proxies (it does not bring a
// proxy that is down back up).
func (s *Server) Clear(m Match) error {
	return s.each(m, func(p *Proxy) error {
		toxics, err := p.p.Toxics()
		if err != nil {
			return err
		}
		var errs []error
		for _, t := range toxics {
			errs = append(errs, p.p.RemoveToxic(t.Name))
		}
		return errors.Join(errs...)
	})
}

// Heal brings every proxy up and removes every toxic.
func (s *Server) Heal() error {
	return errors.Join(s.Up(Match{}), s.Clear(Match{}))
}

// Close deletes the proxies (closing their connections) and stops the
// server. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.proxies = nil
	s.mu.Unlock()
	err := s.api.Collection.Clear()
	err = errors.Join(err, s.http.Close())
	<-s.served
	return err
}
