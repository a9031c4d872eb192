package adversary

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// hookStore reads, then calls hook (once) before returning what it read: a
// change can land while the read's result is on its way.
type hookStore struct {
	*meml2.Store
	mu   sync.Mutex
	hook func()
}

func (h *hookStore) take() func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.hook
	h.hook = nil
	return f
}

func (h *hookStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, ok, err := h.Store.Get(ctx, key)
	if key == "k" {
		if f := h.take(); f != nil {
			f()
		}
	}
	return b, ok, err
}

func (h *hookStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	v, err := h.Store.GetMany(ctx, keys)
	if f := h.take(); f != nil {
		f()
	}
	return v, err
}

// A Set or Remove from another node, applied on B while B's L2 read of the
// old value is on its way: B must not serve the old value afterwards.
func TestAdvChangeDuringL2Read(t *testing.T) {
	for _, path := range []string{"GetOrSet", "Get", "GetOrSetMany"} {
		for _, change := range []string{"Set", "Remove", "Expire", "RemoveByTag", "Clear"} {
			t.Run(path+"/"+change, func(t *testing.T) {
				ctx := context.Background()
				var hs *hookStore
				nodes := newCluster(t, 2, true, func(i int, o *core.Options) {
					if i == 1 {
						hs = &hookStore{Store: o.L2.(*meml2.Store)}
						o.L2 = hs
					}
				})
				a, b := nodes[0], nodes[1]
				opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("t")}
				if err := core.Set(ctx, a.Cache, "k", "old", opts...); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
				hs.mu.Lock()
				hs.hook = func() {
					before := b.Stats().BackplaneReceived
					var err error
					switch change {
					case "Set":
						err = core.Set(ctx, a.Cache, "k", "new", opts...)
					case "Remove":
						err = a.Remove(ctx, "k")
					case "Expire":
						err = a.Expire(ctx, "k")
					case "RemoveByTag":
						err = a.RemoveByTag(ctx, "t")
					case "Clear":
						err = a.Clear(ctx, false)
					}
					if err != nil {
						t.Error(err)
					}
					waitFor(t, "B applied", func() bool { return b.Stats().BackplaneReceived > before })
				}
				hs.mu.Unlock()
				switch path {
				case "GetOrSet":
					_, _ = core.GetOrSet(ctx, b.Cache, "k", constF("src"), opts...)
				case "Get":
					_, _, _ = core.Get[string](ctx, b.Cache, "k")
				case "GetOrSetMany":
					_, _ = core.GetOrSetMany(ctx, b.Cache, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
						return map[string]string{"k": "src"}, nil
					}, opts...)
				}
				if v, ok, _ := core.Get[string](ctx, b.Cache, "k"); ok && v == "old" {
					t.Fatalf("B serves %q after A's %s was applied on B", v, change)
				}
				v, err := core.GetOrSet(ctx, b.Cache, "k", constF("src"), opts...)
				if v == "old" {
					t.Fatalf("B GetOrSet serves %q (%v) after A's %s was applied on B", v, err, change)
				}
				_ = fmt.Sprint()
			})
		}
	}
}
