// Package natstest holds helpers for the tests of strata's NATS adapters
// (backplane/natsbackplane, l2/natskvl2): the address of the test server,
// skipped or failed on when it is not there, and a TCP proxy a test can cut
// and restore to simulate a network failure without touching the server.
package natstest

import (
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// DefaultURL is the NATS server the tests use when STRATA_NATS_URL is not
// set.
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns the URL of the NATS server (with JetStream) the tests talk to:
// $STRATA_NATS_URL, or DefaultURL. When nothing accepts TCP connections
// there, the test fails if $CI is "true" and is skipped otherwise.
func URL(tb testing.TB) string {
	tb.Helper()
	raw := os.Getenv("STRATA_NATS_URL")
	if raw == "" {
		raw = DefaultURL
	}
	Require(tb, "NATS", raw, HostPort(raw, "4222"))
	return raw
}

// HostPort returns the host:port of the first server of a URL such as
// "nats://u:p@h1:4222,h2:4222", adding defaultPort when there is none.
func HostPort(rawURL, defaultPort string) string {
	rest := rawURL
	if _, after, ok := strings.Cut(rest, "://"); ok {
		rest = after
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, "/?,"); i >= 0 {
		rest = rest[:i]
	}
	if _, _, err := net.SplitHostPort(rest); err != nil {
		rest = net.JoinHostPort(rest, defaultPort)
	}
	return rest
}

// Require checks that addr accepts TCP connections. When it does not, it
// fails the test if $CI is "true" (a CI machine must have every server) and
// skips it otherwise, naming the server, the URL (password masked) and the
// environment variable to set.
func Require(tb testing.TB, name, rawURL, addr string) {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	shown := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		shown = u.Redacted()
	}
	msg := name + " server " + shown + " is not reachable (" + err.Error() + "); start it with `make services` or set its STRATA_*_URL"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// ClosedAddr returns a 127.0.0.1 address on which nothing listens (a port
// that was free a moment ago).
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
