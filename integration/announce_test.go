package integration

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2/redisl2"
)

// commandCounter counts the commands (round trips) a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)

		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestOneRoundTripToWriteAndAnnounce: with redisl2 and redisbackplane on
// one Redis client, a Set, a Remove and a factory's result each cost the
// writing node one command (the write and the PUBLISH in one script), and
// the other node serves the change; with values on the backplane it
// serves a Set without reading Redis at all.
func TestOneRoundTripToWriteAndAnnounce(t *testing.T) {
	ctx := context.Background()
	name, prefix := "strata-it-"+redistest.Unique(), redistest.Prefix()
	type rnode struct {
		*core.Cache
		cmds *commandCounter
	}
	var nodes [2]rnode
	for i := range nodes {
		client := redistest.NewClient(t, &redis.Options{ContextTimeoutEnabled: true})
		store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		bp, err := redisbackplane.New(client, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := core.New(core.Options{Name: name, InstanceID: fmt.Sprint("node-", i), L2: store, Backplane: bp,
			BackplaneProbeInterval: -1, WaitForInitialSubscribe: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(); _ = bp.Close(); _ = store.Close() })
		cmds := &commandCounter{}
		client.AddHook(cmds)
		nodes[i] = rnode{c, cmds}
	}
	a, b := nodes[0], nodes[1]
	const key = "profile:7"
	read := func(want string) {
		t.Helper()
		waitFor(t, 5*time.Second, "b to serve "+want, func() bool {
			v, err := core.GetOrSet(ctx, b.Cache, key, func(context.Context, *core.FactoryContext[string]) (string, error) {
				return "", errors.New("no value")
			}, core.WithDuration(time.Hour))
			return err == nil && v == want
		})
	}
	counted := func(what string, f func() error) {
		t.Helper()
		before := a.cmds.n.Load()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		if n := a.cmds.n.Load() - before; n != 1 {
			t.Fatalf("%s: %d commands on the writing node, want 1", what, n)
		}
	}
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	// Open the connections and load the script first: not what is counted.
	for _, n := range nodes {
		if err := core.Set(ctx, n.Cache, "warm-up", "w", opts...); err != nil {
			t.Fatal(err)
		}
		if _, _, err := core.Get[string](ctx, n.Cache, "warm-up"); err != nil {
			t.Fatal(err)
		}
	}
	counted("Set", func() error { return core.Set(ctx, a.Cache, key, "v1", opts...) })
	read("v1")
	counted("Set", func() error { return core.Set(ctx, a.Cache, key, "v2", opts...) })
	read("v2")
	counted("Remove", func() error { return a.Remove(ctx, key) })
	waitFor(t, 5*time.Second, "b to miss", func() bool {
		_, found, err := core.Get[string](ctx, b.Cache, key)
		return err == nil && !found
	})
	// A factory's result: one read of L2 (a miss), then one write.
	before := a.cmds.n.Load()
	v, err := core.GetOrSet(ctx, a.Cache, key, func(context.Context, *core.FactoryContext[string]) (string, error) { return "v3", nil }, opts...)
	if err != nil || v != "v3" {
		t.Fatalf("GetOrSet: %q, %v", v, err)
	}
	if n := a.cmds.n.Load() - before; n != 2 {
		t.Fatalf("a miss and its factory's result: %d commands, want 2 (GET, then the write and announce)", n)
	}
	read("v3")
	// Values on the backplane: b installs v4 from the message, no command.
	counted("Set with its value", func() error {
		return core.Set(ctx, a.Cache, key, "v4", core.WithDuration(time.Hour), core.WithValueOnBackplane(true))
	})
	waitFor(t, 5*time.Second, "the value installed", func() bool { return b.Stats().BackplaneValues == 1 })
	before = b.cmds.n.Load()
	read("v4")
	if n := b.cmds.n.Load() - before; n != 0 {
		t.Fatalf("b served the installed value with %d commands, want 0", n)
	}
}
