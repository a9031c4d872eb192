package core_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
)

// l2Gets is the number of L2 reads the nodes made.
func l2Gets(nodes []*node) (n uint64) {
	for _, nd := range nodes {
		n += nd.l2.Stats().Gets
	}
	return n
}

// TestValuesOnBackplaneSpareL2Reads is issue 17's count: at 50 nodes, one
// update read by every node costs 49 L2 reads without values on the
// backplane and at most one with them (none: each node installs the
// entry from the message).
func TestValuesOnBackplaneSpareL2Reads(t *testing.T) {
	for _, tc := range []struct {
		values  bool
		maxGets uint64
		minGets uint64
	}{{false, 49, 49}, {true, 1, 0}} {
		t.Run(fmt.Sprint("values=", tc.values), func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 50, nil)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(tc.values)}
			if err := core.Set(ctx, nodes[0].Cache, "k", "v1", opts...); err != nil {
				t.Fatal(err)
			}
			for _, nd := range nodes[1:] { // every node holds v1 (and knows the Clear times)
				if !readL2(t, nd) {
					t.Fatalf("%s does not read v1", nd.InstanceID())
				}
			}
			before := l2Gets(nodes)
			if err := core.Set(ctx, nodes[0].Cache, "k", "v2", opts...); err != nil {
				t.Fatal(err)
			}
			for _, nd := range nodes[1:] {
				waitFor(t, "the message", func() bool { return nd.Stats().BackplaneReceived >= 2 })
				v, err := core.GetOrSet(ctx, nd.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
					return "", errors.New("the factory must not run")
				}, opts...)
				if err != nil || v != "v2" {
					t.Fatalf("%s read %q, %v; want v2", nd.InstanceID(), v, err)
				}
			}
			gets := l2Gets(nodes) - before
			var installed uint64
			for _, nd := range nodes[1:] {
				installed += nd.Stats().BackplaneValues
			}
			// With values, each node installed v2 (and v1 only if it had
			// read L2 before the first message came).
			t.Logf("one update read by 49 nodes: %d L2 reads, %d entries installed from messages", gets, installed)
			if gets < tc.minGets || gets > tc.maxGets {
				t.Fatalf("%d L2 reads, want %d to %d", gets, tc.minGets, tc.maxGets)
			}
			if tc.values && (installed < 49 || installed > 2*49) || !tc.values && installed != 0 {
				t.Fatalf("Stats.BackplaneValues total %d", installed)
			}
		})
	}
}

// readL2 makes nd read k (through L2 at worst) and reports whether it got
// v1.
func readL2(t *testing.T, nd *node) bool {
	v, err := core.GetOrSet(context.Background(), nd.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
		return "", errors.New("the factory must not run")
	})
	return err == nil && v == "v1"
}

// must returns a factory that fails the test if it runs, and fresh one
// that returns "fresh".
func mustNotRun(t *testing.T) core.Factory[string] {
	return func(context.Context, *core.FactoryContext[string]) (string, error) {
		t.Error("the factory ran")
		return "", errors.New("the factory must not run")
	}
}

func fresh(context.Context, *core.FactoryContext[string]) (string, error) { return "fresh", nil }

// warm makes every node read k (v) through L2, so that each knows the
// Clear times and k's tags.
func warm(t *testing.T, nodes []*node, k, v string, opts ...core.EntryOption) {
	t.Helper()
	for _, nd := range nodes {
		got, err := core.GetOrSet(context.Background(), nd.Cache, k, mustNotRun(t), opts...)
		if err != nil || got != v {
			t.Fatalf("%s read %q, %v; want %q", nd.InstanceID(), got, err, v)
		}
	}
}

// TestValueOnBackplaneOlderThanKnownChangeNotServed: a value whose message
// arrives after the receiver learnt of a newer change (a Remove, a tag
// invalidation) is not served: versions and tags rule it as they rule an
// L2 read.
func TestValueOnBackplaneOlderThanKnownChangeNotServed(t *testing.T) {
	ctx := context.Background()
	for _, later := range []string{"remove", "remove_tag"} {
		t.Run(later, func(t *testing.T) {
			nodes := newCluster(t, 2, nil)
			a, b := nodes[0], nodes[1]
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("t"), core.WithValueOnBackplane(true)}
			if err := core.Set(ctx, a.Cache, "k", "v0", opts...); err != nil {
				t.Fatal(err)
			}
			warm(t, nodes[1:], "k", "v0", opts...)
			b.bp.SetFault(membackplane.Fault{Delay: 300 * time.Millisecond})
			if err := core.Set(ctx, a.Cache, "k", "v1", opts...); err != nil {
				t.Fatal(err)
			}
			// b changes k after a's Set, before a's message reaches it.
			var err error
			if later == "remove" {
				err = b.Remove(ctx, "k")
			} else {
				err = b.RemoveByTag(ctx, "t")
			}
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived >= 2 })
			b.bp.ClearFault()
			if v, err := core.GetOrSet(ctx, b.Cache, "k", fresh, opts...); err != nil || v != "fresh" {
				t.Fatalf("b read %q, %v after its own %s; want the factory's value", v, err, later)
			}
		})
	}
}

// TestValueOnBackplaneNeedsKnownTags: a receiver that has not read a tag's
// times from L2 reads the entry from L2 instead of installing it.
func TestValueOnBackplaneNeedsKnownTags(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if err := core.Set(ctx, a.Cache, "other", "x"); err != nil {
		t.Fatal(err)
	}
	warm(t, nodes[1:], "other", "x") // b knows the Clear times, not tag t
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("t"), core.WithValueOnBackplane(true)}
	if err := core.Set(ctx, a.Cache, "k", "v1", opts...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived >= 2 })
	if n := b.Stats().BackplaneValues; n != 0 {
		t.Fatalf("b installed %d entries tagged with a tag it never read", n)
	}
	gets := b.l2.Stats().Gets
	warm(t, nodes[1:], "k", "v1", opts...)
	if b.l2.Stats().Gets == gets {
		t.Fatal("b served k without reading L2")
	}
	// Now b knows tag t: the next update is installed.
	if err := core.Set(ctx, a.Cache, "k", "v2", opts...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the value installed", func() bool { return b.Stats().BackplaneValues == 1 })
	gets = b.l2.Stats().Gets
	warm(t, nodes[1:], "k", "v2", opts...)
	if b.l2.Stats().Gets != gets {
		t.Fatal("b read L2 for an entry it had installed")
	}
}

// TestValueOnBackplaneFallsBack: a value over the limit, an L1 with a
// weigher, or a cache without ValueOnBackplane announce without the value;
// signed messages carry it.
func TestValueOnBackplaneFallsBack(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		mod     func(*core.Options)
		opt     core.EntryOption
		install bool
	}{
		{"default off", nil, core.WithDuration(time.Hour), false},
		{"per cache", func(o *core.Options) {
			eo := core.DefaultEntryOptions()
			eo.ValueOnBackplane = true
			o.DefaultEntryOptions = &eo
		}, core.WithDuration(time.Hour), true},
		{"per entry", nil, core.WithValueOnBackplane(true), true},
		{"per entry off", func(o *core.Options) {
			eo := core.DefaultEntryOptions()
			eo.ValueOnBackplane = true
			o.DefaultEntryOptions = &eo
		}, core.WithValueOnBackplane(false), false},
		{"over the limit", func(o *core.Options) { o.BackplaneValueLimit = 20 }, core.WithValueOnBackplane(true), false},
		{"weigher", func(o *core.Options) {
			o.L1MaxWeight, o.L1Weigher = 1<<20, func(string, any) uint32 { return 1 }
		}, core.WithValueOnBackplane(true), false},
		{"signed", func(o *core.Options) { o.BackplaneSigningKeys = [][]byte{[]byte("0123456789abcdef0123")} }, core.WithValueOnBackplane(true), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newCluster(t, 2, tc.mod)
			a, b := nodes[0], nodes[1]
			if err := core.Set(ctx, a.Cache, "k", "v1", tc.opt); err != nil {
				t.Fatal(err)
			}
			warm(t, nodes[1:], "k", "v1")
			waitFor(t, "a's first message", func() bool { return b.Stats().BackplaneReceived >= 1 })
			time.Sleep(20 * time.Millisecond) // counted before it is applied
			installed := b.Stats().BackplaneValues
			if err := core.Set(ctx, a.Cache, "k", strings.Repeat("v2", 10), tc.opt); err != nil {
				t.Fatal(err)
			}
			if tc.install {
				waitFor(t, "v2 installed", func() bool { return b.Stats().BackplaneValues > installed })
			} else {
				waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived >= 2 })
				time.Sleep(20 * time.Millisecond)
				if n := b.Stats().BackplaneValues - installed; n != 0 {
					t.Fatalf("%d entries installed, want none", n)
				}
			}
			warm(t, nodes[1:], "k", strings.Repeat("v2", 10))
		})
	}
}

// TestValueOnBackplaneDecodedAsTheReaderAsks: the receiver decodes the
// entry with the type of its read: a struct, any, and a type the value
// does not decode as (a miss, not an error: the reader reloads it).
func TestValueOnBackplaneDecodedAsTheReaderAsks(t *testing.T) {
	ctx := context.Background()
	type user struct{ Name string }
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(true)}
	set := func(key string, v any) {
		t.Helper()
		if err := core.Set(ctx, a.Cache, key, v, opts...); err != nil {
			t.Fatal(err)
		}
	}
	set("warm", "w")
	warm(t, nodes[1:], "warm", "w") // b knows the Clear times
	set("u", user{"ada"})
	set("m", map[string]any{"n": 1.0})
	set("s", "text")
	waitFor(t, "the values installed", func() bool { return b.Stats().BackplaneValues >= 3 })
	if u, err := core.GetOrSet(ctx, b.Cache, "u", func(context.Context, *core.FactoryContext[user]) (user, error) {
		return user{}, errors.New("ran")
	}); err != nil || u.Name != "ada" {
		t.Fatalf("user: %+v, %v", u, err)
	}
	// Read again: the decoded copy now serves it.
	if u, found, err := core.Get[user](ctx, b.Cache, "u"); err != nil || !found || u.Name != "ada" {
		t.Fatalf("user again: %+v, %v, %v", u, found, err)
	}
	if m, found, err := core.Get[any](ctx, b.Cache, "m"); err != nil || !found || fmt.Sprint(m) != "map[n:1]" {
		t.Fatalf("any: %#v, %v, %v", m, found, err)
	}
	if n, err := core.GetOrSet(ctx, b.Cache, "s", func(context.Context, *core.FactoryContext[int]) (int, error) { return 7, nil }); err != nil || n != 7 {
		t.Fatalf("a string read as int: %v, %v; want the factory's 7 (a miss)", n, err)
	}
	// GetOrSetMany too: an installed value that does not decode as its
	// type is a miss, not an error.
	installed := b.Stats().BackplaneValues
	set("s2", "text")
	waitFor(t, "s2 installed", func() bool { return b.Stats().BackplaneValues > installed })
	m, err := core.GetOrSetMany(ctx, b.Cache, []string{"s2"}, func(_ context.Context, keys []string) (map[string]int, error) {
		return map[string]int{"s2": 8}, nil
	})
	if err != nil || m["s2"] != 8 {
		t.Fatalf("GetOrSetMany of a string read as int: %v, %v; want the factory's 8 (a miss)", m, err)
	}
}

// TestBackplaneReceivedCountsAppliedMessages: once Stats.BackplaneReceived
// has moved, a read on the receiver sees the change (the count is taken
// after the message is applied, so that callers may wait on it).
func TestBackplaneReceivedCountsAppliedMessages(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	for i := range 300 {
		want := fmt.Sprint("v", i)
		if err := core.Set(ctx, b.Cache, "k", "old", core.WithDuration(time.Hour), core.WithSkipBackplane(), core.WithSkipL2Write()); err != nil {
			t.Fatal(err)
		}
		before := b.Stats().BackplaneReceived
		if err := core.Set(ctx, a.Cache, "k", want, core.WithDuration(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for b.Stats().BackplaneReceived == before {
			runtime.Gosched()
		}
		if v, _ := get(t, b.Cache, "k"); v == "old" {
			t.Fatalf("round %d: b's count moved, then b served the value the message replaced", i)
		}
	}
}
