package redistest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from a loopback port to a target (the
// Redis server), so that a test can play network trouble against a real
// server: Cut drops every connection and refuses new ones until Restore,
// SetLatency delays everything forwarded. All methods are safe for
// concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	gen     int // incremented by Cut: forwarding of older connections stops
	latency time.Duration
	conns   map[net.Conn]struct{}
	closed  bool

	wg sync.WaitGroup
}

// StartProxy starts a proxy to target on a free loopback port. The test's
// cleanup closes it.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.Close)
	return p
}

// Addr is the address clients dial to reach the target through the proxy.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy, as a network failure
// would, and until Restore closes each new connection as soon as it is
// accepted: clients see their connections drop and every redial fail.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.gen++
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore lets new connections through again after Cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// SetLatency makes the proxy hold each chunk of bytes until d after it
// arrived before forwarding it, in both directions: every request and every
// reply is late by d. Zero removes the delay, also for chunks being held. A
// very long latency (time.Hour) makes a black hole: connections stay open
// but nothing gets through, as when a network path silently fails.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Close stops the proxy, closes its connections and waits for its
// goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = p.ln.Close()
		for c := range p.conns {
			_ = c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) acceptLoop() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			_ = down.Close()
			continue
		}
		p.conns[down] = struct{}{}
		gen := p.gen
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(down, gen) })
	}
}

// serve connects one accepted connection to the target and forwards bytes
// both ways until either side closes.
func (p *Proxy) serve(down net.Conn, gen int) {
	defer p.forget(down)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.forget(up)
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, down, gen) })
	p.pipe(down, up, gen)
	wg.Wait()
}

// pipe copies from src to dst, each chunk after the current latency, then
// closes both.
func (p *Proxy) pipe(dst, src net.Conn, gen int) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(time.Now(), gen) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or closed by Cut or Close
		}
	}
}

// hold waits until the current latency has passed since arrived. It
// reports false when the connection was cut or the proxy closed meanwhile.
func (p *Proxy) hold(arrived time.Time, gen int) bool {
	for {
		p.mu.Lock()
		d, gone := p.latency, p.closed || p.gen != gen
		p.mu.Unlock()
		if gone {
			return false
		}
		wait := time.Until(arrived.Add(d))
		if wait <= 0 {
			return true
		}
		time.Sleep(min(wait, 10*time.Millisecond))
	}
}

// track records c so that Cut and Close can close it; it reports false
// (and closes c) when the proxy was cut or closed meanwhile.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) forget(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
