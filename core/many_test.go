package core_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestSetManyIsSeenOnOtherNodes(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	keys := []string{"k1", "k2", "k3"}
	// B holds the old values in L1 before A's change.
	for _, k := range keys {
		mustGetOrSet(t, b.Cache, k, constant("old"), core.WithDuration(time.Hour))
	}
	values := map[string]string{"k1": "new1", "k2": "new2", "k3": "new3"}
	if err := core.SetMany(ctx, a.Cache, values, core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for k, want := range values {
		if v, ok := get(t, a.Cache, k); !ok || v != want {
			t.Fatalf("A's %s = %q, %v right after SetMany; want %q", k, v, ok, want)
		}
		waitFor(t, "B sees "+k, func() bool { v, ok := get(t, b.Cache, k); return ok && v == want })
	}
	// L2 holds them too.
	for k, want := range values {
		v, err := core.GetOrSet(ctx, b.Cache, k, failing[string](errors.New("must come from the cache")), core.WithSkipL1Read())
		if err != nil || v != want {
			t.Fatalf("B's %s read past L1 = %q, %v; want %q from L2", k, v, err, want)
		}
	}
}

func TestRemoveManyInvalidatesEveryNode(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	for _, k := range []string{"k1", "k2", "keep"} {
		mustGetOrSet(t, a.Cache, k, constant("v-"+k), core.WithDuration(time.Hour))
		mustGetOrSet(t, b.Cache, k, constant("unused"), core.WithDuration(time.Hour))
	}
	if err := a.RemoveMany(ctx, []string{"k2", "k1", "k2"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		for _, k := range []string{"k1", "k2"} {
			waitFor(t, fmt.Sprintf("%s removed on %s", k, n.InstanceID()), func() bool { _, ok := get(t, n.Cache, k); return !ok })
		}
		if v, ok := get(t, n.Cache, "keep"); !ok || v != "v-keep" {
			t.Fatalf("%s: the key not listed is %q, %v; want v-keep", n.InstanceID(), v, ok)
		}
	}
	// Removed, not expired: fail-safe has nothing to serve.
	if _, err := core.GetOrSet(ctx, b.Cache, "k1", failing[string](errors.New("down")), core.WithFailSafe(time.Hour, time.Minute)); err == nil {
		t.Fatal("B served a value for a removed key")
	}
}

func TestExpireManyKeepsFailSafeOnEveryNode(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute)}
	for _, k := range []string{"k1", "k2"} {
		mustGetOrSet(t, a.Cache, k, constant("v-"+k), opts...)
		mustGetOrSet(t, b.Cache, k, constant("unused"), opts...)
	}
	if err := a.ExpireMany(ctx, []string{"k1", "k2"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k1", "k2"} {
		waitFor(t, k+" expired on B", func() bool { _, ok := get(t, b.Cache, k); return !ok })
		if v := mustGetOrSet(t, b.Cache, k, failing[string](errors.New("down")), opts...); v != "v-"+k {
			t.Fatalf("B's %s = %q after ExpireMany with a failing factory; want the stale v-%s", k, v, k)
		}
	}
}

func TestRemoveByTagsRemovesEntriesOfEitherTag(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	tagged := map[string][]string{"x": {"t1"}, "y": {"t2"}, "xy": {"t1", "t2"}, "z": {"t3"}}
	for _, n := range nodes {
		for k, tags := range tagged {
			mustGetOrSet(t, n.Cache, k, constant("v-"+k), core.WithDuration(time.Hour), core.WithTags(tags...))
		}
	}
	if err := a.RemoveByTags(ctx, []string{"t2", "t1"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		for _, k := range []string{"x", "y", "xy"} {
			waitFor(t, fmt.Sprintf("%s removed on %s", k, n.InstanceID()), func() bool { _, ok := get(t, n.Cache, k); return !ok })
		}
		if v, ok := get(t, n.Cache, "z"); !ok || v != "v-z" {
			t.Fatalf("%s: z (tag t3) = %q, %v; want v-z kept", n.InstanceID(), v, ok)
		}
	}
	if _, err := core.GetOrSet(ctx, b.Cache, "x", failing[string](errors.New("down")), core.WithFailSafe(time.Hour, time.Minute)); err == nil {
		t.Fatal("B served a value removed by tag")
	}
}

func TestExpireByTagsKeepsFailSafe(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	opts := func(tag string) []core.EntryOption {
		return []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute), core.WithTags(tag)}
	}
	for _, n := range nodes {
		mustGetOrSet(t, n.Cache, "x", constant("vx"), opts("t1")...)
		mustGetOrSet(t, n.Cache, "y", constant("vy"), opts("t2")...)
	}
	if err := a.ExpireByTags(ctx, []string{"t1", "t2"}); err != nil {
		t.Fatal(err)
	}
	for k, tag := range map[string]string{"x": "t1", "y": "t2"} {
		waitFor(t, k+" expired on B", func() bool { _, ok := get(t, b.Cache, k); return !ok })
		if v := mustGetOrSet(t, b.Cache, k, failing[string](errors.New("down")), opts(tag)...); v != "v"+k {
			t.Fatalf("B's %s = %q with a failing factory; want the stale v%s", k, v, k)
		}
	}
}

// An empty key or tag fails the whole call before anything changes.
func TestManyEmptyKeyChangesNothing(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("t")}
	if err := core.Set(ctx, c, "a", "old", opts...); err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{
		"SetMany":      core.SetMany(ctx, c, map[string]string{"a": "new", "": "x"}, opts...),
		"RemoveMany":   c.RemoveMany(ctx, []string{"a", ""}),
		"ExpireMany":   c.ExpireMany(ctx, []string{"a", ""}),
		"RemoveByTags": c.RemoveByTags(ctx, []string{"t", ""}),
		"ExpireByTags": c.ExpireByTags(ctx, []string{"t", ""}),
	}
	for name, err := range calls {
		var oe *core.OptionError
		field := "key"
		if strings.HasSuffix(name, "Tags") {
			field = "tag"
		}
		if !errors.As(err, &oe) || oe.Field != field || oe.Value != `""` {
			t.Errorf("%s with an empty %s: %v, want an *OptionError for the empty %s", name, field, err, field)
		}
	}
	if v, ok := get(t, c, "a"); !ok || v != "old" {
		t.Fatalf("a = %q, %v after calls that failed; want old, untouched", v, ok)
	}
}

// A key the cache refuses is reported, naming it; the other keys are
// changed.
func TestManyRefusedKeyIsReportedAndOthersChanged(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{MaxKeyLength: 8})
	long, reserved := "too-long-key", "__strata:x"
	err := core.SetMany(ctx, c, map[string]string{"a": "1", long: "2", reserved: "3", "b": "4"})
	for _, k := range []string{long, reserved} {
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("key %q", k)) {
			t.Errorf("SetMany error %v does not name the refused key %q", err, k)
		}
	}
	var oe *core.OptionError
	if !errors.As(err, &oe) || oe.Field != "key" {
		t.Errorf("SetMany error %v is not an *OptionError for the field key", err)
	}
	for _, k := range []string{"a", "b"} {
		if _, ok := get(t, c, k); !ok {
			t.Errorf("%s not written beside the refused keys", k)
		}
	}

	if err := c.RemoveMany(ctx, []string{"a", long}); err == nil || !strings.Contains(err.Error(), long) {
		t.Errorf("RemoveMany with a long key: %v, want an error naming it", err)
	}
	if _, ok := get(t, c, "a"); ok {
		t.Error("a not removed beside the refused key")
	}
	mustGetOrSet(t, c, "c", constant("v"), core.WithTags("t"))
	if err := c.RemoveByTags(ctx, []string{"t", "too-long-tag"}); err == nil || !strings.Contains(err.Error(), `tag "too-long-tag"`) {
		t.Errorf("RemoveByTags with a long tag: %v, want an error naming it", err)
	}
	if _, ok := get(t, c, "c"); ok {
		t.Error("the entry tagged t not removed beside the refused tag")
	}
}

// A value that cannot be serialized for L2 fails its own key only.
func TestSetManyUnserializableValueFailsItsKeyOnly(t *testing.T) {
	ctx := context.Background()
	nd := newCluster(t, 1, nil)[0]
	err := core.SetMany(ctx, nd.Cache, map[string]any{"ok": 1, "bad": make(chan int)})
	if err == nil || !strings.Contains(err.Error(), `key "bad"`) || strings.Contains(err.Error(), `key "ok"`) {
		t.Fatalf("SetMany error = %v, want one naming the key bad only", err)
	}
	if v, ok, err := core.Get[any](ctx, nd.Cache, "ok"); err != nil || !ok || v != 1 {
		t.Fatalf("ok = %v, %v, %v; want 1 written", v, ok, err)
	}
	if _, ok, _ := core.Get[any](ctx, nd.Cache, "bad"); ok {
		t.Fatal("the unserializable value was cached")
	}
}

// Errors that would refuse every key end the call; with none changed yet,
// the error is the one-key call's own.
func TestManyCallWideErrors(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	values := map[string]int{"a": 1, "b": 2}

	var oe *core.OptionError
	err := core.SetMany(ctx, c, values, core.WithDuration(-time.Second))
	if !errors.As(err, &oe) || oe.Field == "key" || strings.Contains(err.Error(), "SetMany") {
		t.Fatalf("SetMany with an invalid option: %v, want Set's own *OptionError for the option", err)
	}
	if c.Len() != 0 {
		t.Fatalf("L1 holds %d entries after a call with invalid options", c.Len())
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = core.SetMany(cancelled, c, values)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `2 of 2 keys not written, from "a" on`) {
		t.Fatalf("SetMany with an ended context: %v", err)
	}
	if c.Len() != 0 {
		t.Fatalf("L1 holds %d entries after a call whose context had ended", c.Len())
	}

	var nilCtx context.Context
	for name, err := range map[string]error{
		"SetMany":      core.SetMany(nilCtx, c, values),
		"RemoveMany":   c.RemoveMany(nilCtx, []string{"a"}),
		"ExpireMany":   c.ExpireMany(nilCtx, []string{"a"}),
		"RemoveByTags": c.RemoveByTags(nilCtx, []string{"t"}),
		"ExpireByTags": c.ExpireByTags(nilCtx, []string{"t"}),
	} {
		if !errors.As(err, &oe) || oe.Field != "ctx" {
			t.Errorf("%s with a nil context: %v, want an *OptionError naming ctx", name, err)
		}
	}
	if err := core.SetMany[int](ctx, nil, values); !errors.As(err, &oe) || oe.Field != "cache" {
		t.Fatalf("SetMany with a nil cache: %v", err)
	}
	var nilCache *core.Cache
	if err := nilCache.RemoveByTags(ctx, []string{"t"}); !errors.As(err, &oe) || oe.Field != "cache" {
		t.Fatalf("RemoveByTags on a nil cache: %v", err)
	}

	if err := core.SetMany(ctx, c, map[string]int{}); err != nil {
		t.Fatalf("SetMany with no values: %v", err)
	}
	c.Close()
	for name, err := range map[string]error{
		"SetMany":      core.SetMany(ctx, c, values),
		"RemoveMany":   c.RemoveMany(ctx, []string{"a"}),
		"ExpireMany":   c.ExpireMany(ctx, []string{"a"}),
		"RemoveByTags": c.RemoveByTags(ctx, []string{"t"}),
		"ExpireByTags": c.ExpireByTags(ctx, []string{"t"}),
	} {
		if err != core.ErrClosed {
			t.Errorf("%s after Close: %v, want ErrClosed itself", name, err)
		}
	}
}

// Each key is changed once, in sorted order, as its own operation.
func TestManyChangesEachKeyOnceInOrder(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	c := newCache(t, core.Options{Observers: []core.Observer{rec}})
	if err := core.SetMany(ctx, c, map[string]int{"c": 3, "a": 1, "b": 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveMany(ctx, []string{"b", "a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveByTags(ctx, []string{"t2", "t1", "t2"}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	var got []string
	for _, op := range rec.ops {
		got = append(got, op.Op.String()+" "+op.Key)
	}
	rec.mu.Unlock()
	want := []string{"set a", "set b", "set c", "remove a", "remove b", "remove_by_tag t1", "remove_by_tag t2"}
	if !slices.Equal(got, want) {
		t.Fatalf("operations = %q, want %q", got, want)
	}
}
