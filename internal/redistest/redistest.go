// Package redistest holds what the tests of strata's Redis adapters share:
// the address of the test server, clients that close with the test, unique
// key prefixes and channel names, a TCP proxy that a test can cut, restore,
// slow down or turn into a black hole to play network failures and a slow
// server against a real Redis, and throw-away Redis Cluster and Sentinel
// deployments started from the redis-server binary.
//
// The server's address comes from $STRATA_REDIS_ADDR (default
// 127.0.0.1:6379). When nothing answers there, a test is skipped with a
// message saying so, except when $CI is "true": then it fails, so that a CI
// run never passes by skipping the adapters.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultAddr is the server address used when $STRATA_REDIS_ADDR is unset.
const DefaultAddr = "127.0.0.1:6379"

// Addr returns the address of the test server after checking that it
// answers a PING within a few seconds. When it does not, Addr skips t, or
// fails it when $CI is "true".
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("STRATA_REDIS_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	if err := ping(addr); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s (STRATA_REDIS_ADDR) is unreachable, and CI=true forbids skipping: %v", addr, err)
		}
		t.Skipf("skipping: Redis at %s (STRATA_REDIS_ADDR) is unreachable: %v", addr, err)
	}
	return addr
}

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// NewClient returns a client of its own for the test server (or for
// opts.Addr when set), closed when the test ends. opts may be nil.
func NewClient(t testing.TB, opts *redis.Options) *redis.Client {
	t.Helper()
	var o redis.Options
	if opts != nil {
		o = *opts
	}
	if o.Addr == "" {
		o.Addr = Addr(t)
	}
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Unique returns a short random string, to make key prefixes, channel
// names and client names no other test run uses.
func Unique() string { return rand.Text()[:16] }

// Prefix returns a key prefix unique to this call, for tests that share the
// server with other runs.
func Prefix() string { return "strata-test:" + Unique() + ":" }

// Unreachable is an address where nothing listens (port 1 of the loopback
// interface), for tests of failing fast.
const Unreachable = "127.0.0.1:1"
