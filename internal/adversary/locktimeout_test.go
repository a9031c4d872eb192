package adversary

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// Same root cause as TestAdvRemoveBetweenLookupAndJoinNoL2, no observer
// needed: a joiner waits on a slow leader, the key is Removed, the joiner's
// lock timeout runs its own (failing) factory, whose fail-safe re-caches the
// removed value; every later call gets it.
func TestAdvRemoveThenLockTimeoutNoL2(t *testing.T) {
	for _, withL2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "noL2", true: "L2"}[withL2], func(t *testing.T) { removeThenLockTimeout(t, withL2) })
	}
}

func removeThenLockTimeout(t *testing.T, withL2 bool) {
	ctx := context.Background()
	clk := newFakeClock()
	o := core.Options{Clock: clk}
	if withL2 {
		s, _ := meml2.NewShared(t.Name(), nil)
		t.Cleanup(func() { s.Close() })
		o.L2 = s
	}
	c := newCache(t, o)
	fs := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Minute)}
	if err := core.Set(ctx, c, "k", "old", fs...); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	boom := errors.New("source down")
	started, release := make(chan struct{}), make(chan struct{})
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		_, _ = core.GetOrSet(ctx, c, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(started)
			<-release
			return "", boom
		}, append(fs, core.WithFactoryTimeouts(0, time.Hour))...)
	}()
	<-started
	joinerDone := make(chan struct{})
	var jv string
	var jerr error
	go func() {
		defer close(joinerDone)
		jv, jerr = core.GetOrSet(ctx, c, "k", failF(boom), append(fs, core.WithLockTimeout(200*time.Millisecond))...)
	}()
	time.Sleep(50 * time.Millisecond) // the joiner waits on the leader's run
	if err := c.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	<-joinerDone
	t.Logf("joiner (overlapped the Remove) got %q, %v", jv, jerr)
	close(release)
	<-leaderDone
	v, err := core.GetOrSet(ctx, c, "k", failF(boom), fs...)
	if err == nil {
		t.Fatalf("GetOrSet started after Remove returned got %q, nil error: removed value re-cached by fail-safe", v)
	}
}

// The same with the Remove made on another node (backplane, no L2).
func TestAdvRemoteRemoveThenLockTimeoutNoL2(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, false, func(_ int, o *core.Options) { o.Clock = core.SystemClock })
	a, b := nodes[0], nodes[1]
	fs := []core.EntryOption{core.WithDuration(30 * time.Millisecond), core.WithFailSafe(time.Hour, time.Minute)}
	if err := core.Set(ctx, b.Cache, "k", "old", append(fs, core.WithSkipBackplane())...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	boom := errors.New("source down")
	started, release := make(chan struct{}), make(chan struct{})
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		_, _ = core.GetOrSet(ctx, b.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(started)
			<-release
			return "", boom
		}, append(fs, core.WithFactoryTimeouts(0, time.Hour))...)
	}()
	<-started
	joinerDone := make(chan struct{})
	go func() {
		defer close(joinerDone)
		_, _ = core.GetOrSet(ctx, b.Cache, "k", failF(boom), append(fs, core.WithLockTimeout(200*time.Millisecond))...)
	}()
	time.Sleep(50 * time.Millisecond)
	before := b.Stats().BackplaneReceived
	if err := a.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B applied the Remove", func() bool { return b.Stats().BackplaneReceived > before })
	<-joinerDone
	close(release)
	<-leaderDone
	if v, err := core.GetOrSet(ctx, b.Cache, "k", failF(boom), fs...); err == nil {
		t.Fatalf("B, after applying A's Remove, serves %q by fail-safe", v)
	}
}
