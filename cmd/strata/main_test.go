package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
)

// TestMain fails the run if a goroutine outlives the tests: every cache,
// store, backplane and command they start is stopped by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what one run of the command line printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line args in-process, bounded in time.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	t.Logf("strata %s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return result{code, out.String(), errb.String()}
}

// eventually polls cond every 20ms until it holds, failing t after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// env is a cache deployment: the URLs its nodes use, its name and key
// prefix, unique to the test.
type env struct {
	bpURL, l2URL string
	name, prefix string
}

func redisURL(t *testing.T) string { return "redis://" + redistest.Addr(t) }

// newEnv returns a deployment on the backplane kind ("redis", "nats" or
// "amqp") with the Redis L2.
func newEnv(t *testing.T, kind string) env {
	t.Helper()
	e := env{l2URL: redisURL(t), name: "cli-" + redistest.Unique(), prefix: redistest.Prefix()}
	t.Cleanup(func() { dropPrefix(t, e.prefix) })
	switch kind {
	case "redis":
		e.bpURL = e.l2URL
	case "nats":
		e.bpURL = natstest.URL(t)
	case "amqp":
		e.bpURL = rabbittest.URL(t)
	default:
		t.Fatalf("unknown backplane kind %q", kind)
	}
	return e
}

// dropPrefix deletes the test's keys (tombstones and markers live for
// minutes to days) from the shared Redis.
func dropPrefix(t *testing.T, prefix string) {
	rc := redistest.NewClient(t, nil)
	ctx := context.Background()
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	if err == nil && len(keys) > 0 {
		err = rc.Del(ctx, keys...).Err()
	}
	if err != nil {
		t.Logf("deleting the keys under %q: %v", prefix, err)
	}
}

// args returns the flags naming e, followed by more.
func (e env) args(cmd string, more ...string) []string {
	return append([]string{cmd, "-backplane", e.bpURL, "-l2", e.l2URL, "-cache", e.name, "-key-prefix", e.prefix}, more...)
}

// node starts a cache node of e, closed when the test ends.
func (e env) node(t *testing.T, keys ...[]byte) *core.Cache {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := l2.Open(ctx, e.l2URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	bp, err := backplane.Open(ctx, e.bpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bp.Close() })
	c, err := core.New(core.Options{
		Name: e.name, KeyPrefix: e.prefix, L2: store, Backplane: bp,
		BackplaneSigningKeys: keys, WaitForInitialSubscribe: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// l2Envelope reads what L2 holds under the cache key (with e's prefix).
func (e env) l2Envelope(t *testing.T, key string) (l2.Envelope, bool) {
	t.Helper()
	ctx := context.Background()
	store, err := l2.Open(ctx, e.l2URL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b, found, err := store.Get(ctx, e.prefix+key)
	if err != nil || !found {
		return l2.Envelope{}, false
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		t.Fatalf("L2 entry %q: %v", key, err)
	}
	return env, true
}

// inL1 reports whether c serves key from its L1 alone.
func inL1(t *testing.T, c *core.Cache, key string) bool {
	t.Helper()
	_, found, err := core.Get[string](context.Background(), c, key, core.WithSkipL2Read())
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// served reports whether c serves key (L1, then L2).
func served(t *testing.T, c *core.Cache, key string) bool {
	t.Helper()
	_, found, err := core.Get[string](context.Background(), c, key)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// seed sets each key on a and reads it on b, so that both hold it in L1.
func seed(t *testing.T, a, b *core.Cache, keys []string, opts ...core.EntryOption) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys {
		if err := core.Set(ctx, a, k, "v:"+k, opts...); err != nil {
			t.Fatal(err)
		}
		if !served(t, b, k) || !inL1(t, a, k) || !inL1(t, b, k) {
			t.Fatalf("%q is not in both nodes' L1 after Set", k)
		}
	}
}

var backplaneKinds = []string{"redis", "nats", "amqp"}

// TestInvalidateKeyRemovesFromTwoNodesAndL2 is the "must show":
// strata invalidate -key removes the key from two running nodes (their L1,
// through the message) and from L2 (a tombstone), on every backplane.
func TestInvalidateKeyRemovesFromTwoNodesAndL2(t *testing.T) {
	for _, kind := range backplaneKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			a, b := e.node(t), e.node(t)
			seed(t, a, b, []string{"k1", "k2", "keep"})
			before := time.Now().UnixNano()
			r := cli(t, e.args("invalidate", "-key", "k1", "-key", "k2")...)
			if r.code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, `removed key "k1"`) || !strings.Contains(r.stdout, "ok: 2 invalidations") {
				t.Errorf("stdout does not report the removals: %q", r.stdout)
			}
			for _, k := range []string{"k1", "k2"} {
				env, found := e.l2Envelope(t, k)
				if !found || env.Flags&l2.FlagTombstone == 0 || env.Created < before {
					t.Errorf("L2 under %q: found %v, envelope %+v; want a tombstone of version >= %d", k, found, env, before)
				}
				for i, c := range []*core.Cache{a, b} {
					eventually(t, "node "+string(rune('A'+i))+" to drop "+k+" from L1", func() bool { return !inL1(t, c, k) })
					if served(t, c, k) {
						t.Errorf("node %c still serves %q", 'A'+i, k)
					}
				}
			}
			for i, c := range []*core.Cache{a, b} {
				if !inL1(t, c, "keep") {
					t.Errorf("node %c lost %q, which was not invalidated", 'A'+i, "keep")
				}
			}
		})
	}
}

// TestInvalidateTag removes the entries of a tag from both nodes, keeps the
// others, and leaves the tag's marker in L2 for -marker-ttl.
func TestInvalidateTag(t *testing.T) {
	for _, kind := range backplaneKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			a, b := e.node(t), e.node(t)
			seed(t, a, b, []string{"t1", "t2"}, core.WithTags("tenant:7"))
			seed(t, a, b, []string{"other"}, core.WithTags("tenant:8"))
			r := cli(t, e.args("invalidate", "-tag", "tenant:7", "-marker-ttl", "72h")...)
			if r.code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s", r.code, r.stderr)
			}
			for i, c := range []*core.Cache{a, b} {
				for _, k := range []string{"t1", "t2"} {
					eventually(t, "a node to stop serving "+k, func() bool { return !served(t, c, k) })
				}
				if !served(t, c, "other") {
					t.Errorf("node %c stopped serving %q (tag tenant:8)", 'A'+i, "other")
				}
			}
			// A node started after the message learns the tag from L2.
			late := e.node(t)
			if served(t, late, "t1") {
				t.Error("a node started after the invalidation serves t1: no tag marker in L2")
			}
			if !served(t, late, "other") {
				t.Error("a node started after the invalidation does not serve other")
			}
			r = cli(t, "inspect", "-l2", e.l2URL, "-key-prefix", e.prefix, "-json", "__strata:tag-remove:tenant:7")
			if r.code != 0 {
				t.Fatalf("inspect of the tag marker: exit %d: %s", r.code, r.stderr)
			}
			rep := decodeReport(t, r.stdout)
			if rep.StoreExpires == nil || time.Until(*rep.StoreExpires) < 71*time.Hour {
				t.Errorf("tag marker expires at %v, want >= 71h from now (-marker-ttl 72h)", rep.StoreExpires)
			}
		})
	}
}

// TestInvalidateClear removes every entry from both nodes.
func TestInvalidateClear(t *testing.T) {
	for _, kind := range backplaneKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			a, b := e.node(t), e.node(t)
			keys := []string{"c1", "c2", "c3"}
			seed(t, a, b, keys)
			r := cli(t, e.args("invalidate", "-clear")...)
			if r.code != 0 || !strings.Contains(r.stdout, "removed every entry") {
				t.Fatalf("exit %d, want 0 and the clear reported; stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			for _, c := range []*core.Cache{a, b} {
				for _, k := range keys {
					eventually(t, "a node to stop serving "+k, func() bool { return !served(t, c, k) })
				}
			}
			if served(t, e.node(t), "c1") {
				t.Error("a node started after the clear serves c1: no clear marker in L2")
			}
		})
	}
}

// TestInvalidateExpireKeepsFailSafe: -expire makes the nodes call the
// factory, but a failing factory still gets the old value from fail-safe;
// after a plain remove it gets nothing.
func TestInvalidateExpireKeepsFailSafe(t *testing.T) {
	e := newEnv(t, "redis")
	a, b := e.node(t), e.node(t)
	fs := core.WithFailSafe(time.Hour, time.Minute)
	seed(t, a, b, []string{"fs-expired", "fs-removed"}, fs)
	failing := func(context.Context, *core.FactoryContext[string]) (string, error) { return "", errFactory }
	ctx := context.Background()

	if r := cli(t, e.args("invalidate", "-expire", "-key", "fs-expired")...); r.code != 0 || !strings.Contains(r.stdout, `expired key "fs-expired"`) {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
	if r := cli(t, e.args("invalidate", "-key", "fs-removed")...); r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for i, c := range []*core.Cache{a, b} {
		eventually(t, "the expire to reach the node", func() bool {
			_, found, _ := core.Get[string](ctx, c, "fs-expired")
			return !found
		})
		v, err := core.GetOrSet(ctx, c, "fs-expired", failing, fs)
		if err != nil || v != "v:fs-expired" {
			t.Errorf("node %c: GetOrSet of an expired fail-safe key with a failing factory = %q, %v; want the old value", 'A'+i, v, err)
		}
		eventually(t, "the remove to reach the node", func() bool { return !inL1(t, c, "fs-removed") })
		if v, err := core.GetOrSet(ctx, c, "fs-removed", failing, fs); err == nil {
			t.Errorf("node %c: GetOrSet of a removed key with a failing factory = %q, nil; want the factory's error", 'A'+i, v)
		}
	}
}

var errFactory = errorString("the source is down")

type errorString string

func (e errorString) Error() string { return string(e) }
