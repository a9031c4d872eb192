package reliability

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// server is a redis-server or nats-server process of the test's own, on a
// free loopback port, that the test can stop and start again on the same
// port (a restart: a server without persistence comes back empty).
type server struct {
	t    *testing.T
	bin  string
	args func(port int) []string
	port int
	cmd  *exec.Cmd
}

// startServer starts bin (looked up in $PATH: the test is skipped without
// it, or failed when $CI is "true") and stops it when the test ends.
func startServer(t *testing.T, bin string, args func(port int) []string) *server {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not in $PATH, and CI=true forbids skipping: %v", bin, err)
		}
		t.Skipf("skipping: %s is not in $PATH: %v", bin, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &server{t: t, bin: path, args: args, port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// Addr is the server's host:port.
func (s *server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// start runs the server and waits until it accepts connections.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args(s.port)...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.bin, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s on %s did not accept connections within 10s: %v", s.bin, s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server (as a crash would) and waits for it to exit. It is
// idempotent.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func redisArgs(dir string) func(int) []string {
	return func(port int) []string {
		return []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", "redis.log"}
	}
}

func natsArgs(port int) []string {
	return []string{"-a", "127.0.0.1", "-p", fmt.Sprint(port)}
}
