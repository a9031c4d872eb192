package adversary

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// Attacks on values on the backplane (core.WithValueOnBackplane): a set
// message that carries the new entry, installed by receivers in L1 without
// reading L2 "exactly as an entry read from L2".

var withValue = []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(true)}

// warmUp makes writer set "warm" and every reader read it through L2, so
// that the readers know the Clear times (a receiver installs values only
// then).
// It waits for the readers to apply the writer's message, so that a test
// counting BackplaneReceived afterwards counts only its own messages.
func warmUp(t *testing.T, writer *node, readers ...*node) {
	t.Helper()
	before := make([]uint64, len(readers))
	for i, r := range readers {
		before[i] = r.Stats().BackplaneReceived
	}
	warmUpNoWait(t, writer, readers...)
	for i, r := range readers {
		waitFor(t, r.InstanceID()+" to apply the warm-up message", func() bool { return r.Stats().BackplaneReceived > before[i] })
	}
}

// warmUpNoWait is warmUp for readers that apply no message.
func warmUpNoWait(t *testing.T, writer *node, readers ...*node) {
	t.Helper()
	ctx := context.Background()
	if err := core.Set(ctx, writer.Cache, "warm", "w", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		v, err := core.GetOrSet(ctx, r.Cache, "warm", failF(errors.New("the factory must not run")), core.WithDuration(time.Hour))
		if err != nil || v != "w" {
			t.Fatalf("%s warm-up read %q, %v", r.InstanceID(), v, err)
		}
	}
}

// readOrFresh reads key on n; on a miss the factory gives "fresh".
func readOrFresh(t *testing.T, n *node, key string) string {
	t.Helper()
	v, err := core.GetOrSet(context.Background(), n.Cache, key, constF("fresh"), core.WithDuration(time.Hour))
	if err != nil {
		t.Fatalf("GetOrSet(%s) on %s: %v", key, n.InstanceID(), err)
	}
	return v
}

// TestValueOnBackplaneAfterOwnRemoveWithFloorForgotten: B removes (or
// expires) k after A set it (A's message, carrying v1, is still on its way
// to B: B's subscription lags 2 s, under half the default bound). B then
// changes many other keys, so that its map of version floors (bounded by
// L1MaxEntries, at least 1,024) forgets k's. A message without a value
// only makes B drop its copy: its next read finds B's tombstone in L2 and
// misses. A message with the value is installed from the message itself,
// where no tombstone is checked: B serves v1, which its own Remove
// replaced, for the entry's whole duration; read from L2 it would not.
func TestValueOnBackplaneAfterOwnRemoveWithFloorForgotten(t *testing.T) {
	for _, tc := range []struct {
		change string
		values bool
	}{{"remove", false}, {"remove", true}, {"expire", false}, {"expire", true}} {
		values := tc.values
		t.Run(fmt.Sprint(tc.change, "/values=", values), func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.L1MaxEntries = 16 })
			a, b := nodes[0], nodes[1]
			warmUp(t, a, b)
			b.bp.SetFault(membackplane.Fault{Delay: 2 * time.Second})
			if err := core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour), core.WithValueOnBackplane(values)); err != nil {
				t.Fatal(err)
			}
			received := b.Stats().BackplaneReceived
			change := b.Remove
			if tc.change == "expire" {
				change = b.Expire
			}
			if err := change(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			flood := time.Now()
			for i := range 4096 { // L1-only changes: floors of other keys
				if err := core.Set(ctx, b.Cache, fmt.Sprint("other-", i), "x", core.WithSkipL2Write(), core.WithSkipBackplane()); err != nil {
					t.Fatal(err)
				}
			}
			if b.Stats().BackplaneReceived > received {
				t.Fatalf("a's message arrived during the flood (%v): make the delay longer", time.Since(flood))
			}
			waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived > received })
			if v := readOrFresh(t, b, "k"); v != "fresh" {
				t.Fatalf("after its own %s of k, b serves %q (BackplaneValues %d): a value older than the change came back through the backplane",
					tc.change, v, b.Stats().BackplaneValues)
			}
		})
	}
}

// TestValueOnBackplaneLateMessageServedPastBound: B's subscription lags
// (every delivery to it late by 1.5 s). A sets v1 with its value, then
// replaces it by v2 300 ms later. When v1's message reaches B, v2 has
// replaced v1 for 1.2 s, three times the staleness bound (400 ms). Without
// values B drops its copy and reads v2 from L2; with values it installs v1
// from the late message: it must not serve it as fresh (the bound holds
// "however late the transport delivers").
func TestValueOnBackplaneLateMessageServedPastBound(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			const bound = 400 * time.Millisecond
			nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.BackplaneStalenessBound = bound })
			a, b := nodes[0], nodes[1]
			warmUp(t, a, b)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			b.bp.SetFault(membackplane.Fault{Delay: 1500 * time.Millisecond})
			received := b.Stats().BackplaneReceived
			if err := core.Set(ctx, a.Cache, "k", "v1", opts...); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if err := core.Set(ctx, a.Cache, "k", "v2", opts...); err != nil {
				t.Fatal(err)
			}
			replaced := time.Now()
			// Read k on B until both messages are in; any v1 read after
			// replaced+bound breaks the bound.
			deadline := time.Now().Add(5 * time.Second)
			var worst time.Duration
			for b.Stats().BackplaneReceived < received+2 && time.Now().Before(deadline) {
				v, found, err := core.Get[string](ctx, b.Cache, "k")
				if err != nil {
					t.Fatal(err)
				}
				if found && v == "v1" {
					if age := time.Since(replaced); age > worst {
						worst = age
					}
				}
				time.Sleep(time.Millisecond)
			}
			if worst > bound {
				t.Fatalf("b served v1 %v after v2 replaced it (staleness bound %v); BackplaneValues %d, Behind %v",
					worst.Round(time.Millisecond), bound, b.Stats().BackplaneValues, b.Stats().Behind)
			}
			if v := readOrFresh(t, b, "k"); v != "v2" {
				t.Fatalf("b finally serves %q, want v2", v)
			}
		})
	}
}

// TestValueOnBackplaneAutoCloneMutation: with AutoClone, a caller that
// mutates what it got does not change what the next caller gets, also for
// an entry installed from the backplane (kept serialized until the first
// read decodes it).
func TestValueOnBackplaneAutoCloneMutation(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.AutoClone = true })
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	if err := core.Set(ctx, a.Cache, "m", map[string]int{"n": 1}, withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the value installed", func() bool { return b.Stats().BackplaneValues == 1 })
	for i := range 3 {
		m, found, err := core.Get[map[string]int](ctx, b.Cache, "m")
		if err != nil || !found || m["n"] != 1 {
			t.Fatalf("read %d: %v, %v, %v; want map[n:1] (a caller's mutation leaked into L1)", i, m, found, err)
		}
		m["n"] = 99
	}
	// The same through GetOrSet, and with a pointer type on another key.
	type box struct{ N int }
	if err := core.Set(ctx, a.Cache, "p", &box{N: 1}, withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the value installed", func() bool { return b.Stats().BackplaneValues == 2 })
	for i := range 3 {
		p, err := core.GetOrSet(ctx, b.Cache, "p", func(context.Context, *core.FactoryContext[*box]) (*box, error) {
			return nil, errors.New("the factory must not run")
		}, core.WithDuration(time.Hour))
		if err != nil || p == nil || p.N != 1 {
			t.Fatalf("read %d: %+v, %v; want &{N:1}", i, p, err)
		}
		p.N = 99
	}
}

// TestValueOnBackplaneSlowFactoryOlderThanValue: a factory that started on
// B before A's Set does not cache its (older) result over the entry that
// A's message installed while it ran.
func TestValueOnBackplaneSlowFactoryOlderThanValue(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, nil)
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan string, 1)
	go func() {
		v, _ := core.GetOrSet(ctx, b.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(started)
			<-release
			return "old", nil
		}, core.WithDuration(time.Hour))
		done <- v
	}()
	<-started
	if err := core.Set(ctx, a.Cache, "k", "new", withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived >= 2 })
	close(release)
	<-done
	if v := readOrFresh(t, b, "k"); v != "new" {
		t.Fatalf("b serves %q after its slow factory ended; want a's newer %q (BackplaneValues %d)", v, "new", b.Stats().BackplaneValues)
	}
	if v := readOrFresh(t, a, "k"); v != "new" {
		t.Fatalf("a serves %q, want new", v)
	}
}

// TestValueOnBackplaneInvalidatedWhileInFlight: a value announced by A
// whose message reaches B after B applied a newer Clear, RemoveByTag or
// Remove (its own, or a third node's whose message overtook A's because
// A's L2 write was slow) is not served.
func TestValueOnBackplaneInvalidatedWhileInFlight(t *testing.T) {
	cases := []struct {
		name   string
		change func(ctx context.Context, c *core.Cache) error
	}{
		{"clear", func(ctx context.Context, c *core.Cache) error { return c.Clear(ctx, false) }},
		{"clear_expire", func(ctx context.Context, c *core.Cache) error { return c.Clear(ctx, true) }},
		{"remove_tag", func(ctx context.Context, c *core.Cache) error { return c.RemoveByTag(ctx, "t") }},
		{"remove", func(ctx context.Context, c *core.Cache) error { return c.Remove(ctx, "k") }},
		{"expire", func(ctx context.Context, c *core.Cache) error { return c.Expire(ctx, "k") }},
	}
	for _, tc := range cases {
		for _, by := range []string{"receiver", "third"} {
			t.Run(tc.name+"/"+by, func(t *testing.T) {
				ctx := context.Background()
				nodes := newCluster(t, 3, true, nil)
				a, b, c := nodes[0], nodes[1], nodes[2]
				tagged := append([]core.EntryOption{core.WithTags("t")}, withValue...)
				if err := core.Set(ctx, a.Cache, "k", "v0", tagged...); err != nil {
					t.Fatal(err)
				}
				warmUp(t, a, b, c)
				for _, n := range []*node{b, c} { // both know k's tag
					if v, err := core.GetOrSet(ctx, n.Cache, "k", failF(errSourceDown), tagged...); err != nil || v != "v0" {
						t.Fatalf("%s read %q, %v", n.InstanceID(), v, err)
					}
				}
				received := b.Stats().BackplaneReceived
				// A's write is slow: its version is taken now, its message
				// goes out after the change below.
				a.l2.SetFault(meml2.Fault{Delay: 300 * time.Millisecond})
				setDone := make(chan error, 1)
				go func() { setDone <- core.Set(ctx, a.Cache, "k", "v1", tagged...) }()
				time.Sleep(100 * time.Millisecond)
				changer := b
				if by == "third" {
					changer = c
				}
				if err := tc.change(ctx, changer.Cache); err != nil {
					t.Fatal(err)
				}
				if err := <-setDone; err != nil {
					t.Fatal(err)
				}
				a.l2.ClearFault()
				want := received + 1
				if by == "third" {
					want++
				}
				waitFor(t, "the messages", func() bool { return b.Stats().BackplaneReceived >= want })
				if v := readOrFresh(t, b, "k"); v == "v1" || v == "v0" {
					t.Fatalf("b serves %q after a %s newer than it (BackplaneValues %d)", v, tc.name, b.Stats().BackplaneValues)
				}
			})
		}
	}
}

// injector publishes crafted payloads on the bus of a cluster.
type injector struct {
	bp  *membackplane.Backplane
	seq uint64
	src string
}

func (in *injector) send(t *testing.T, m backplane.Message) {
	t.Helper()
	in.seq++
	m.Cache, m.Source, m.Seq = "cl", in.src, in.seq
	if m.Action == 0 {
		m.Action = backplane.ActionSet
	}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if err := in.bp.Publish(context.Background(), backplane.ChannelName("cl"), b); err != nil {
		t.Fatal(err)
	}
}

func envelope(t *testing.T, e l2.Envelope) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValueOnBackplaneCraftedValues: set messages whose value is not a
// good entry (garbage, a tombstone, a version two days ahead, another
// type, a created time far before the message's) never crash a receiver,
// and never keep it from serving the next legitimate change.
func TestValueOnBackplaneCraftedValues(t *testing.T) {
	now := time.Now().UnixNano()
	hour := int64(time.Hour)
	cases := []struct {
		name  string
		value func(t *testing.T) []byte
		ts    int64
	}{
		{"garbage", func(*testing.T) []byte { return []byte("not an envelope at all") }, now},
		{"truncated", func(t *testing.T) []byte {
			b := envelope(t, l2.Envelope{Created: now, Expires: now + hour, Value: []byte(`"evil"`)})
			return b[:len(b)-2]
		}, now},
		{"tombstone", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Flags: 0x02, Created: now, Expires: now + hour})
		}, now},
		{"not json", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Created: now, Expires: now + hour, Value: []byte{0xff, 0x00, 0x01}})
		}, now},
		{"an int", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Created: now, Expires: now + hour, Value: []byte(`42`)})
		}, now},
		{"created 48h ahead", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Created: now + 48*hour, Expires: now + 49*hour, Value: []byte(`"evil"`)})
		}, now},
		{"timestamp 48h ahead", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Created: now, Expires: now + hour, Value: []byte(`"evil"`)})
		}, now + 48*hour},
		{"created 20h ahead of timestamp", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Created: now + 20*hour, Expires: now + 21*hour, Value: []byte(`"evil"`)})
		}, now},
		{"64 KiB", func(t *testing.T) []byte {
			v := make([]byte, backplane.MaxValueLen-100)
			for i := range v {
				v[i] = 'a'
			}
			v[0], v[len(v)-1] = '"', '"'
			return envelope(t, l2.Envelope{Created: now, Expires: now + hour, Value: v})
		}, now},
		{"expires before created", func(t *testing.T) []byte {
			return envelope(t, l2.Envelope{Created: now, Expires: now - hour, Value: []byte(`"evil"`)})
		}, now},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 2, true, nil)
			a, b := nodes[0], nodes[1]
			warmUp(t, a, b)
			if err := core.Set(ctx, a.Cache, "k", "v0", withValue...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "v0", func() bool { return b.Stats().BackplaneReceived >= 2 })
			in := &injector{bp: a.bp, src: "evil/0000000000000001"}
			received := b.Stats().BackplaneReceived + b.Stats().BackplaneCorrupt + b.Stats().BackplaneRejected
			in.send(t, backplane.Message{Key: "k", Timestamp: tc.ts, Value: tc.value(t)})
			waitFor(t, "the crafted message", func() bool {
				s := b.Stats()
				return s.BackplaneReceived+s.BackplaneCorrupt+s.BackplaneRejected > received
			})
			s := b.Stats()
			t.Logf("after the crafted message: received %d, values %d, corrupt %d, rejected %d, L2Corrupt %d",
				s.BackplaneReceived, s.BackplaneValues, s.BackplaneCorrupt, s.BackplaneRejected, s.L2Corrupt)
			_ = readOrFresh(t, b, "k") // whatever it is, no crash
			// The next legitimate change reaches b.
			time.Sleep(time.Millisecond)
			if err := core.Set(ctx, a.Cache, "k", "v2", withValue...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b serves v2", func() bool {
				v, found, err := core.Get[string](ctx, b.Cache, "k")
				return err == nil && found && v == "v2"
			})
		})
	}
}

// TestValueOnBackplaneReplayedSigned: with signing keys, a captured value
// message replayed later (after a newer change) is dropped as a duplicate,
// and a value message sealed with another key is rejected.
func TestValueOnBackplaneReplayedSigned(t *testing.T) {
	ctx := context.Background()
	key := []byte("0123456789abcdef0123456789abcdef")
	nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.BackplaneSigningKeys = [][]byte{key} })
	a, b := nodes[0], nodes[1]
	// A spy on the bus captures what a publishes.
	var captured atomic.Pointer[[]byte]
	spyNode := a.bp // a's handle: a ignores what it publishes, b gets it
	sub, err := a.bp.Subscribe(ctx, backplane.ChannelName("cl"), func(p []byte) {
		ring, _ := backplane.NewKeyring(key)
		raw, err := ring.Open(nil, p)
		if err != nil {
			return
		}
		m, err := backplane.DecodeMessage(raw)
		if err != nil || m.Key != "k" || m.Value == nil {
			return
		}
		if captured.Load() == nil {
			cp := append([]byte(nil), p...)
			captured.Store(&cp)
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	warmUp(t, a, b)
	if err := core.Set(ctx, a.Cache, "k", "v1", withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "captured", func() bool { return captured.Load() != nil })
	if err := core.Set(ctx, a.Cache, "k", "v2", withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2 on b", func() bool {
		v, found, err := core.Get[string](ctx, b.Cache, "k")
		return err == nil && found && v == "v2"
	})
	rejected := b.Stats().BackplaneRejected
	if err := spyNode.Publish(ctx, backplane.ChannelName("cl"), *captured.Load()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay rejected", func() bool { return b.Stats().BackplaneRejected > rejected })
	if v := readOrFresh(t, b, "k"); v != "v2" {
		t.Fatalf("after a replay of v1's message b serves %q", v)
	}
	// Forged with another key.
	other, _ := backplane.NewKeyring([]byte("another key, 32 bytes long......"))
	now := time.Now().Add(time.Second).UnixNano()
	m := backplane.Message{Cache: "cl", Source: "evil/0000000000000001", Seq: 1, Action: backplane.ActionSet, Key: "k", Timestamp: now,
		Value: envelope(t, l2.Envelope{Created: now, Expires: now + int64(time.Hour), Value: []byte(`"evil"`)})}
	raw, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := other.Seal(raw)
	if err != nil {
		t.Fatal(err)
	}
	rejected = b.Stats().BackplaneRejected
	if err := spyNode.Publish(ctx, backplane.ChannelName("cl"), sealed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forgery rejected", func() bool { return b.Stats().BackplaneRejected > rejected })
	if v := readOrFresh(t, b, "k"); v != "v2" {
		t.Fatalf("after a forged value b serves %q", v)
	}
}

// joinNode starts one more node on bus and store name, as newCluster does.
func joinNode(t *testing.T, bus *membackplane.Bus, name, id string) *node {
	t.Helper()
	store, err := meml2.NewShared(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	bp := bus.Connect(nil)
	c := newCache(t, core.Options{Name: "cl", InstanceID: id, L2: store, Backplane: bp})
	t.Cleanup(func() { store.Close(); bp.Close() })
	waitFor(t, id+" connected", func() bool { return !c.Stats().Disconnected })
	return &node{Cache: c, l2: store, bp: bp}
}

// TestValueOnBackplaneRefusedWriteInstalledByNewNode: A sets v1, but its
// L2 write is slow; meanwhile C sets v2, which reaches L2 first, so A's
// conditional write of v1 is refused (L2 keeps v2, the newer). A's message
// then goes out. E, a node that started after C's message, has no version
// floor for k: without values it drops nothing and reads v2 from L2; with
// values it installs v1 from A's message, a value L2 refused because v2
// had replaced it, and serves it for the entry's whole duration.
func TestValueOnBackplaneRefusedWriteInstalledByNewNode(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			name := fmt.Sprintf("%s-%d", t.Name(), seq.Add(1))
			bus := membackplane.NewBus()
			a, c := joinNode(t, bus, name, "node-a"), joinNode(t, bus, name, "node-c")
			warmUp(t, a, c)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			a.l2.SetFault(meml2.Fault{Delay: 500 * time.Millisecond})
			setDone := make(chan error, 1)
			go func() { setDone <- core.Set(ctx, a.Cache, "k", "v1", opts...) }()
			time.Sleep(50 * time.Millisecond)
			if err := core.Set(ctx, c.Cache, "k", "v2", opts...); err != nil {
				t.Fatal(err)
			}
			e := joinNode(t, bus, name, "node-e") // starts after C's message
			warmUp(t, c, e)
			received := e.Stats().BackplaneReceived
			if err := <-setDone; err != nil {
				t.Fatal(err)
			}
			a.l2.ClearFault()
			waitFor(t, "a's message on e", func() bool { return e.Stats().BackplaneReceived > received })
			if v := readOrFresh(t, c, "k"); v != "v2" {
				t.Fatalf("c serves %q, want v2", v)
			}
			if v := readOrFresh(t, e, "k"); v != "v2" {
				t.Fatalf("e serves %q while L2 holds v2, which replaced it (BackplaneValues %d): a write L2 refused came in through the backplane",
					v, e.Stats().BackplaneValues)
			}
		})
	}
}

// TestValueOnBackplaneReadTypesAsFromL2: an entry installed from the
// backplane is read "exactly as an entry read from L2": for every sequence
// of reader types (any, then string; int, then string; a pointer...), a
// key whose value came with its message and a key read from L2 give the
// same results.
func TestValueOnBackplaneReadTypesAsFromL2(t *testing.T) {
	type reader struct {
		name string
		get  func(c *core.Cache, key string) string
	}
	show := func(v any, found bool, err error) string {
		if err != nil {
			return "error"
		}
		return fmt.Sprintf("%v %#v", found, v)
	}
	readers := map[string]func(c *core.Cache, key string) string{
		"any": func(c *core.Cache, key string) string {
			v, f, err := core.Get[any](context.Background(), c, key)
			return show(v, f, err)
		},
		"string": func(c *core.Cache, key string) string {
			v, f, err := core.Get[string](context.Background(), c, key)
			return show(v, f, err)
		},
		"int": func(c *core.Cache, key string) string {
			v, f, err := core.Get[int](context.Background(), c, key)
			return show(v, f, err)
		},
		"*string": func(c *core.Cache, key string) string {
			v, f, err := core.Get[*string](context.Background(), c, key)
			if v != nil {
				return show(*v, f, err)
			}
			return show(v, f, err)
		},
		"Stringer": func(c *core.Cache, key string) string {
			v, f, err := core.Get[fmt.Stringer](context.Background(), c, key)
			return show(v, f, err)
		},
	}
	seqs := [][]string{{"any", "string"}, {"string", "any"}, {"int", "string"}, {"int", "int"}, {"*string", "string"}, {"string", "*string"}, {"Stringer", "string"}, {"any", "int"}}
	ctx := context.Background()
	nodes := newCluster(t, 2, true, nil)
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	for i, s := range seqs {
		kv, kp := fmt.Sprint("v-", i), fmt.Sprint("p-", i)
		installed := b.Stats().BackplaneValues
		if err := core.Set(ctx, a.Cache, kv, "text", withValue...); err != nil {
			t.Fatal(err)
		}
		if err := core.Set(ctx, a.Cache, kp, "text", core.WithDuration(time.Hour)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the value installed", func() bool { return b.Stats().BackplaneValues > installed })
		for j, r := range s {
			gv, gp := readers[r](b.Cache, kv), readers[r](b.Cache, kp)
			if gv != gp {
				t.Errorf("sequence %v, read %d (%s): installed from the backplane %s, read from L2 %s", s, j, r, gv, gp)
			}
		}
	}
}

// TestValueOnBackplaneReceiverWithWeigher: the sender has no weigher and
// sends values; the receiver bounds its L1 by weight. Its weigher is given
// the values the cache holds (here strings), never the serialized bytes of
// an installed entry or an internal type (a weigher asserting its type
// would panic on those).
func TestValueOnBackplaneReceiverWithWeigher(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[string]bool{}
	nodes := newCluster(t, 2, true, func(i int, o *core.Options) {
		if i == 1 {
			o.L1MaxWeight = 1 << 20
			o.L1Weigher = func(_ string, v any) uint32 {
				mu.Lock()
				seen[fmt.Sprintf("%T", v)] = true
				mu.Unlock()
				return 1
			}
		}
	})
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	received := b.Stats().BackplaneReceived
	if err := core.Set(ctx, a.Cache, "k", "v1", withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived > received })
	if v := readOrFresh(t, b, "k"); v != "v1" {
		t.Fatalf("b serves %q, want v1", v)
	}
	mu.Lock()
	defer mu.Unlock()
	for typ := range seen {
		if typ != "string" {
			t.Errorf("the weigher was given a %s (types seen: %v)", typ, seen)
		}
	}
}

// TestValueOnBackplaneIgnoredByIgnoringNode: a node with
// IgnoreIncomingBackplaneMessages installs no value either.
func TestValueOnBackplaneIgnoredByIgnoringNode(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, func(i int, o *core.Options) { o.IgnoreIncomingBackplaneMessages = i == 1 })
	a, b := nodes[0], nodes[1]
	warmUpNoWait(t, a, b)
	if err := core.Set(ctx, a.Cache, "k", "v1", withValue...); err != nil {
		t.Fatal(err)
	}
	if err := core.Set(ctx, a.Cache, "sync", "s", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := b.Stats().BackplaneValues; n != 0 {
		t.Fatalf("an ignoring node installed %d values", n)
	}
}

// TestValueOnBackplaneInstalledThenInvalidated: an installed entry obeys
// every later change from a third node exactly as an entry read from L2
// (RemoveByTag, Remove, Clear, Expire without fail-safe).
func TestValueOnBackplaneInstalledThenInvalidated(t *testing.T) {
	for _, change := range []string{"remove_tag", "remove", "clear", "expire", "expire_tag"} {
		t.Run(change, func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 3, true, nil)
			a, b, c := nodes[0], nodes[1], nodes[2]
			tagged := append([]core.EntryOption{core.WithTags("t")}, withValue...)
			if err := core.Set(ctx, a.Cache, "k", "v0", tagged...); err != nil {
				t.Fatal(err)
			}
			warmUp(t, a, b, c)
			if v, err := core.GetOrSet(ctx, b.Cache, "k", failF(errSourceDown), tagged...); err != nil || v != "v0" {
				t.Fatalf("b read %q, %v", v, err)
			}
			installed := b.Stats().BackplaneValues
			if err := core.Set(ctx, a.Cache, "k", "v1", tagged...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "v1 installed", func() bool { return b.Stats().BackplaneValues > installed })
			if v := readOrFresh(t, b, "k"); v != "v1" {
				t.Fatalf("b serves %q, want v1", v)
			}
			received := b.Stats().BackplaneReceived
			var err error
			switch change {
			case "remove_tag":
				err = c.RemoveByTag(ctx, "t")
			case "expire_tag":
				err = c.ExpireByTag(ctx, "t")
			case "remove":
				err = c.Remove(ctx, "k")
			case "clear":
				err = c.Clear(ctx, false)
			case "expire":
				err = c.Expire(ctx, "k")
			}
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "c's message", func() bool { return b.Stats().BackplaneReceived > received })
			if v := readOrFresh(t, b, "k"); v != "fresh" {
				t.Fatalf("b serves %q after c's %s", v, change)
			}
		})
	}
}

// TestValueOnBackplaneKeepsL1Duration: every node's entries live 200 ms
// in L1 (DefaultEntryOptions.L1Duration) and an hour in L2, so that a
// change made without a message (SkipBackplane here; a batch job writing
// L2 in general) is seen within 200 ms. An entry installed from the
// backplane is an L1 entry like any other: it must not outlive the L1
// duration because the envelope carries the L2 one.
func TestValueOnBackplaneKeepsL1Duration(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 2, true, func(_ int, o *core.Options) {
				eo := core.DefaultEntryOptions()
				eo.Duration, eo.L1Duration, eo.ValueOnBackplane = time.Hour, 200*time.Millisecond, values
				o.DefaultEntryOptions = &eo
			})
			a, b := nodes[0], nodes[1]
			warmUp(t, a, b)
			received := b.Stats().BackplaneReceived
			if err := core.Set(ctx, a.Cache, "k", "v1"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived > received })
			if v, err := core.GetOrSet(ctx, b.Cache, "k", constF("fresh")); err != nil || v != "v1" {
				t.Fatalf("b reads %q, %v; want v1", v, err)
			}
			if err := core.Set(ctx, a.Cache, "k", "v2", core.WithSkipBackplane()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
			if v, err := core.GetOrSet(ctx, b.Cache, "k", constF("fresh")); err != nil || v != "v2" {
				t.Fatalf("400ms after a change not announced, b reads %q, %v; want v2 (L1Duration 200ms, BackplaneValues %d)",
					v, err, b.Stats().BackplaneValues)
			}
		})
	}
}

// TestValueOnBackplaneEagerRefreshOlderThanValue: B holds k with eager
// refresh; a read starts the background refresh, whose factory is slow.
// Meanwhile A sets k and its value is installed on B. The refresh's result
// (read from the source before A's Set) must not replace it.
func TestValueOnBackplaneEagerRefreshOlderThanValue(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, nil)
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	opts := []core.EntryOption{core.WithDuration(400 * time.Millisecond), core.WithEagerRefresh(0.1)}
	if v, err := core.GetOrSet(ctx, b.Cache, "k", constF("v0"), opts...); err != nil || v != "v0" {
		t.Fatalf("b: %q, %v", v, err)
	}
	time.Sleep(100 * time.Millisecond) // past the eager refresh threshold
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(context.Context, *core.FactoryContext[string]) (string, error) {
		once.Do(func() { close(started) })
		<-release
		return "refreshed-old", nil
	}
	if v, err := core.GetOrSet(ctx, b.Cache, "k", slow, opts...); err != nil || v != "v0" {
		t.Fatalf("b: %q, %v; want the cached v0 while refreshing", v, err)
	}
	select {
	case <-started:
	case <-time.After(2 * time.Second):
		t.Fatal("no eager refresh started")
	}
	installed := b.Stats().BackplaneValues
	if err := core.Set(ctx, a.Cache, "k", "new", core.WithDuration(time.Hour), core.WithValueOnBackplane(true)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's value installed", func() bool { return b.Stats().BackplaneValues > installed })
	close(release)
	time.Sleep(50 * time.Millisecond)
	if v := readOrFresh(t, b, "k"); v != "new" {
		t.Fatalf("b serves %q after its eager refresh ended; want a's newer value", v)
	}
}

// TestValueOnBackplaneReplayedPublishAfterNewerChange: A sets v1; its L2
// write succeeds but its publish fails and waits in the recovery queue.
// C then sets v2 (L2 now holds v2, everyone is told). E starts after C's
// message. When A's queued publish is replayed, E, which has no version
// floor for k, must not install v1 from it: v2 replaced v1 before E even
// started. Without values E drops nothing and reads v2 from L2.
func TestValueOnBackplaneReplayedPublishAfterNewerChange(t *testing.T) {
	for _, how := range []string{"publish error", "disconnected"} {
		for _, values := range []bool{false, true} {
			t.Run(fmt.Sprint(how, "/values=", values), func(t *testing.T) {
				ctx := context.Background()
				name := fmt.Sprintf("%s-%d", t.Name(), seq.Add(1))
				bus := membackplane.NewBus()
				join := func(id string) *node {
					store, err := meml2.NewShared(name, nil)
					if err != nil {
						t.Fatal(err)
					}
					bp := bus.Connect(nil)
					c := newCache(t, core.Options{Name: "cl", InstanceID: id, L2: store, Backplane: bp, AutoRecoveryDelay: 100 * time.Millisecond})
					t.Cleanup(func() { store.Close(); bp.Close() })
					waitFor(t, id+" connected", func() bool { return !c.Stats().Disconnected })
					return &node{Cache: c, l2: store, bp: bp}
				}
				a, c := join("node-a"), join("node-c")
				warmUp(t, a, c)
				opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
				if how == "publish error" {
					a.bp.SetFault(membackplane.Fault{PublishErr: errors.New("publish refused")})
				} else {
					a.bp.Disconnect()
					waitFor(t, "a disconnected", func() bool { return a.Stats().Disconnected })
				}
				if err := core.Set(ctx, a.Cache, "k", "v1", opts...); err != nil {
					t.Fatal(err)
				}
				if a.Stats().RecoveryQueued == 0 {
					t.Fatal("a's publish was not queued")
				}
				time.Sleep(5 * time.Millisecond)
				if err := core.Set(ctx, c.Cache, "k", "v2", opts...); err != nil {
					t.Fatal(err)
				}
				e := join("node-e")
				warmUp(t, c, e)
				received := e.Stats().BackplaneReceived
				if how == "publish error" {
					a.bp.ClearFault()
				} else {
					a.bp.Reconnect()
				}
				// Whatever a replays is published before this marker
				// (a queued publish may also have been dropped: C's
				// message is newer).
				waitFor(t, "a's queue empty", func() bool { s := a.Stats(); return s.RecoveryQueued == 0 && !s.Disconnected })
				if err := core.Set(ctx, a.Cache, "marker", "m", core.WithDuration(time.Hour)); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "a's marker on e", func() bool { return e.Stats().BackplaneReceived > received })
				t.Logf("a: %+v", a.Stats())
				if v := readOrFresh(t, e, "k"); v != "v2" {
					t.Fatalf("e serves %q while L2 holds v2, which replaced it before e started (BackplaneValues %d)", v, e.Stats().BackplaneValues)
				}
			})
		}
	}
}

// TestValueOnBackplaneConcurrentFirstDecode: an installed entry stays
// serialized until the first read decodes it. Many readers hitting it at
// once (Get, GetOrSet, GetOrSetMany, all of one type) race on that first
// decode: -race must stay quiet and each gets the value. Then readers of
// different types race (a key read as two types is the caller's error, so
// only a panic or a data race fails that part).
func TestValueOnBackplaneConcurrentFirstDecode(t *testing.T) {
	ctx := context.Background()
	type user struct{ Name string }
	nodes := newCluster(t, 2, true, nil)
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	for round := range 40 {
		mixed := round%2 == 1
		keys := []string{fmt.Sprint("u-", round), fmt.Sprint("w-", round)}
		installed := b.Stats().BackplaneValues
		for _, k := range keys {
			if err := core.Set(ctx, a.Cache, k, user{"ada"}, withValue...); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "installed", func() bool { return b.Stats().BackplaneValues >= installed+2 })
		check := func(what string, ok bool, v any, err error) {
			if !mixed && (!ok || err != nil) {
				t.Errorf("round %d, %s: %+v, %v", round, what, v, err)
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				switch g % 4 {
				case 0:
					u, found, err := core.Get[user](ctx, b.Cache, keys[0])
					check("Get[user]", found && u.Name == "ada", u, err)
				case 1:
					if mixed {
						m, _, err := core.Get[any](ctx, b.Cache, keys[0])
						check("Get[any]", m != nil, m, err)
					} else {
						u, found, err := core.Get[user](ctx, b.Cache, keys[1])
						check("Get[user]", found && u.Name == "ada", u, err)
					}
				case 2:
					if mixed {
						u, err := core.GetOrSet(ctx, b.Cache, keys[0], func(context.Context, *core.FactoryContext[*user]) (*user, error) {
							return &user{"factory"}, nil
						}, core.WithDuration(time.Hour))
						check("GetOrSet[*user]", u != nil, u, err)
					} else {
						u, err := core.GetOrSet(ctx, b.Cache, keys[0], func(context.Context, *core.FactoryContext[user]) (user, error) {
							return user{"factory"}, nil
						}, core.WithDuration(time.Hour))
						check("GetOrSet[user]", u.Name == "ada", u, err)
					}
				case 3:
					got, err := core.GetOrSetMany(ctx, b.Cache, keys, func(_ context.Context, missing []string) (map[string]user, error) {
						out := map[string]user{}
						for _, k := range missing {
							out[k] = user{"factory"}
						}
						return out, nil
					}, core.WithDuration(time.Hour))
					check("GetOrSetMany[user]", len(got) == 2 && got[keys[0]].Name == "ada" && got[keys[1]].Name == "ada", got, err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
}

// TestBackplaneValueLimitBoundary: an entry of exactly
// BackplaneValueLimit encoded bytes travels with its message, one byte
// more does not (the other nodes read L2); limits beyond
// backplane.MaxValueLen or negative are refused by New.
func TestBackplaneValueLimitBoundary(t *testing.T) {
	ctx := context.Background()
	const limit = 100
	nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.BackplaneValueLimit = limit })
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	// A string of n bytes (no escaping) encodes as n+2 JSON bytes in an
	// envelope of 42 more bytes without tags or ETag.
	for _, tc := range []struct {
		n       int
		install bool
	}{{limit - 44, true}, {limit - 43, false}} {
		v := string(make([]byte, 0, tc.n))
		for range tc.n {
			v += "a"
		}
		key := fmt.Sprint("k-", tc.n)
		e := l2.Envelope{Value: []byte(`"` + v + `"`)}
		if raw, _ := e.MarshalBinary(); (len(raw) <= limit) != tc.install {
			t.Fatalf("test arithmetic: %d bytes", len(raw))
		}
		installed, received := b.Stats().BackplaneValues, b.Stats().BackplaneReceived
		if err := core.Set(ctx, a.Cache, key, v, withValue...); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived > received })
		if got := b.Stats().BackplaneValues > installed; got != tc.install {
			t.Errorf("a %d-byte string: installed %v, want %v", tc.n, got, tc.install)
		}
	}
	for _, bad := range []int{-1, backplane.MaxValueLen + 1} {
		c, err := core.New(core.Options{Name: "cl", L2: meml2.New(nil), Backplane: membackplane.New(nil), BackplaneValueLimit: bad})
		if err == nil {
			_ = c.Close()
			t.Errorf("New accepted BackplaneValueLimit %d", bad)
		} else {
			t.Logf("BackplaneValueLimit %d: %v", bad, err)
		}
	}
}

// TestBackplaneValueAtMaxLimitSigned: with BackplaneValueLimit at its
// maximum (backplane.MaxValueLen) and signing keys, an entry of exactly
// that size travels, is sealed, opened and installed (not rejected as too
// long for a signed payload), under a long key.
func TestBackplaneValueAtMaxLimitSigned(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 2, true, func(_ int, o *core.Options) {
				o.BackplaneValueLimit = backplane.MaxValueLen
				o.MaxKeyLength = 4000
				if signed {
					o.BackplaneSigningKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
				}
			})
			a, b := nodes[0], nodes[1]
			warmUp(t, a, b)
			buf := make([]byte, backplane.MaxValueLen-44)
			for i := range buf {
				buf[i] = 'a'
			}
			key := string(buf[:3000])
			installed, rejected := b.Stats().BackplaneValues, b.Stats().BackplaneRejected
			if err := core.Set(ctx, a.Cache, key, string(buf), withValue...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the value installed", func() bool {
				s := b.Stats()
				return s.BackplaneValues > installed || s.BackplaneRejected > rejected || s.BackplaneCorrupt > 0
			})
			if s := b.Stats(); s.BackplaneValues == installed {
				t.Fatalf("a %d-byte entry (the limit) was not installed: %+v", backplane.MaxValueLen, s)
			}
		})
	}
}

// TestValueOnBackplaneSupersededFactoryNotInstalledElsewhere: B's factory
// (values on the backplane) is superseded by A's Remove while it runs: its
// result is neither cached nor published, so C never installs it; and a
// fail-safe entry B expired itself is not made fresh again by an older
// value message.
func TestValueOnBackplaneSupersededFactoryNotInstalledElsewhere(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 3, true, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	warmUp(t, a, b, c)
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = core.GetOrSet(ctx, b.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(started)
			<-release
			return "old", nil
		}, withValue...)
	}()
	<-started
	received := b.Stats().BackplaneReceived
	if err := a.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b hears the Remove", func() bool { return b.Stats().BackplaneReceived > received })
	installed := c.Stats().BackplaneValues
	close(release)
	<-done
	// A marker from b: c has got whatever b published before it.
	if err := core.Set(ctx, b.Cache, "marker", "m", withValue...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c installs b's marker", func() bool { return c.Stats().BackplaneValues > installed })
	if n := c.Stats().BackplaneValues - installed; n != 1 {
		t.Fatalf("c installed %d values from b, want only the marker: the superseded result was published", n)
	}
	for _, n := range []*node{b, c} {
		if v := readOrFresh(t, n, "k"); v != "fresh" {
			t.Fatalf("%s serves %q after a's Remove", n.InstanceID(), v)
		}
	}
}

// TestValueOnBackplaneFailSafeExpiredNotRefreshedByOlderValue: B holds a
// fail-safe entry; A sets v1 (its message to B is late); B expires k
// itself after A's Set. A's v1 then arrives: v1 is older than B's Expire,
// so B must not serve it as fresh (it calls the factory; fail-safe may
// fall back only when the factory fails).
func TestValueOnBackplaneFailSafeExpiredNotRefreshedByOlderValue(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, nil)
	a, b := nodes[0], nodes[1]
	warmUp(t, a, b)
	fs := []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Second), core.WithValueOnBackplane(true)}
	if err := core.Set(ctx, a.Cache, "k", "v0", fs...); err != nil {
		t.Fatal(err)
	}
	if v, err := core.GetOrSet(ctx, b.Cache, "k", failF(errSourceDown), fs...); err != nil || v != "v0" {
		t.Fatalf("b: %q, %v", v, err)
	}
	received := b.Stats().BackplaneReceived
	b.bp.SetFault(membackplane.Fault{Delay: 300 * time.Millisecond})
	if err := core.Set(ctx, a.Cache, "k", "v1", fs...); err != nil {
		t.Fatal(err)
	}
	if err := b.Expire(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's message", func() bool { return b.Stats().BackplaneReceived > received })
	b.bp.ClearFault()
	v, err := core.GetOrSet(ctx, b.Cache, "k", constF("fresh"), fs...)
	if err != nil || v != "fresh" {
		t.Fatalf("b serves %q, %v after its own Expire, newer than v1", v, err)
	}
}
