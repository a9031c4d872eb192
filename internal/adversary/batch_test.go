package adversary

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// docs/batch.md, "The result and the error": "`ctx` done first | no (as for
// `GetOrSet`) | `ctx.Err()`". The table used to promise the stale value,
// which neither the code nor its own last bullet did: the docs were fixed.
func TestAdvBatchCtxDoneServesStaleWithFailSafe(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk})
	fs := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Minute)}
	if err := core.Set(context.Background(), c, "k", "old", fs...); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	m, err := core.GetOrSetMany(ctx, c, []string{"k"}, func(ctx context.Context, keys []string) (map[string]string, error) {
		<-release
		return map[string]string{"k": "new"}, nil
	}, fs...)
	if _, ok := m["k"]; ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetOrSetMany with ctx done first = %v, %v; docs/batch.md says ctx's error and no value", m, err)
	}
}

// A GetOrSet leader without background completion times out and cancels the
// shared factory; a GetOrSetMany that joined it, still willing to wait, must
// get a value (its own run), not the cancellation.
func TestAdvBatchJoinedRunCancelledByLeaderTimeout(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	started := make(chan struct{})
	go func() {
		_, _ = core.GetOrSet(ctx, c, "k", func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
			close(started)
			<-ctx.Done()
			return "", ctx.Err()
		}, core.WithFactoryTimeouts(0, 100*time.Millisecond), core.WithBackgroundFactoryCompletion(false))
	}()
	<-started
	m, err := core.GetOrSetMany(ctx, c, []string{"k", "j"}, func(ctx context.Context, keys []string) (map[string]string, error) {
		out := map[string]string{}
		for _, k := range keys {
			out[k] = "batch"
		}
		return out, nil
	})
	if err != nil || m["k"] != "batch" || m["j"] != "batch" {
		t.Fatalf("GetOrSetMany = %v, %v", m, err)
	}
}

// GetOrSetMany produces k; a GetOrSet joins with a lock timeout shorter than
// the batch; a Remove lands in between. Nobody may cache or serve the value
// the batch read before the Remove after the Remove returned.
func TestAdvBatchLeaderRemoveJoiner(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = core.GetOrSetMany(ctx, c, []string{"k"}, func(ctx context.Context, keys []string) (map[string]string, error) {
			close(started)
			<-release
			return map[string]string{"k": "before remove"}, nil
		})
	}()
	<-started
	jdone := make(chan string)
	go func() {
		v, _ := core.GetOrSet(ctx, c, "k", constF("joiner"), core.WithLockTimeout(50*time.Millisecond))
		jdone <- v
	}()
	time.Sleep(10 * time.Millisecond)
	if err := c.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	t.Logf("joiner got %q", <-jdone)
	if v, ok, _ := core.Get[string](ctx, c, "k"); ok && v == "before remove" {
		t.Fatalf("after Remove returned, L1 holds %q", v)
	}
}

// docs/timeouts.md: L2SoftTimeout — "a read waits the soft timeout when a
// stale value can be served instead (then it counts as a miss and the
// factory runs), else the hard one". GetOrSet keeps it; GetOrSetMany's
// multi-get waits the hard timeout.
func TestAdvBatchL2SoftTimeout(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "GetOrSet", true: "GetOrSetMany"}[batch], func(t *testing.T) {
			ctx := context.Background()
			clk := newFakeClock()
			store, _ := meml2.NewShared(t.Name(), &meml2.Options{Now: clk.Now})
			defer store.Close()
			c := newCache(t, core.Options{L2: store, Clock: clk})
			fs := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Minute), core.WithL2Timeouts(50*time.Millisecond, 2*time.Second)}
			if err := core.Set(ctx, c, "k", "old", fs...); err != nil {
				t.Fatal(err)
			}
			clk.Advance(2 * time.Second)
			store.SetFault(meml2.Fault{Delay: time.Second})
			start := time.Now()
			if batch {
				_, _ = core.GetOrSetMany(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
					return map[string]string{"k": "new"}, nil
				}, fs...)
			} else {
				_, _ = core.GetOrSet(ctx, c, "k", constF("new"), fs...)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Fatalf("took %v with a 50ms L2 soft timeout and a stale value", d)
			}
		})
	}
}
