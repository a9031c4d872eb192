package toxitest

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer accepts connections on a free loopback port and echoes every
// line back, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip sends a line through addr and returns how long the echo took,
// or an error (after at most timeout).
func roundTrip(addr string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(timeout))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, io.ErrUnexpectedEOF
	}
	return time.Since(start), nil
}

// TestFaults: a proxy forwards; Down refuses connections and Up restores
// them on the same port; Latency delays a round trip by at least twice
// the latency; BlackHole swallows data; Clear ends the toxics.
func TestFaults(t *testing.T) {
	s := Start(t)
	upstream := echoServer(t)
	a, err := s.NewProxy("node-0", RoleL2, "echo", upstream)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NewProxy("node-1", RoleL2, "echo", upstream)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Proxy{a, b} {
		if _, err := roundTrip(p.Addr(), 2*time.Second); err != nil {
			t.Fatalf("through %s: %v", p.Name(), err)
		}
	}

	if err := s.Down(Match{Node: "node-0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(a.Addr(), time.Second); err == nil {
		t.Fatal("a round trip went through a proxy that is down")
	}
	if _, err := roundTrip(b.Addr(), 2*time.Second); err != nil {
		t.Fatalf("node-1's proxy, not matched, failed: %v", err)
	}
	if err := s.Up(Match{Node: "node-0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(a.Addr(), 2*time.Second); err != nil {
		t.Fatalf("after Up, on the same address: %v", err)
	}

	const lat = 100 * time.Millisecond
	if err := s.Latency(Match{Service: "echo"}, lat, 0); err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(b.Addr(), 5*time.Second); err != nil || d < 2*lat {
		t.Fatalf("round trip with %v latency each way took %v (err %v), want at least %v", lat, d, err, 2*lat)
	}
	if err := s.Clear(Match{}); err != nil {
		t.Fatal(err)
	}

	if err := s.BlackHole(Match{Node: "node-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(b.Addr(), 300*time.Millisecond); err == nil {
		t.Fatal("a round trip went through a black hole")
	}
	if err := s.Heal(); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(b.Addr(), 2*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

// TestMatchNothingIsAnError: a fault that selects no proxy fails rather
// than silently doing nothing.
func TestMatchNothingIsAnError(t *testing.T) {
	s := Start(t)
	if _, err := s.NewProxy("node-0", RoleBackplane, "echo", echoServer(t)); err != nil {
		t.Fatal(err)
	}
	err := s.Down(Match{Role: "l2"})
	if err == nil || !strings.Contains(err.Error(), "no proxy matches") {
		t.Fatalf("Down of an unmatched role: %v, want a 'no proxy matches' error", err)
	}
	if got := len(s.Select(Match{})); got != 1 {
		t.Fatalf("Select(Match{}) = %d proxies, want 1", got)
	}
}
