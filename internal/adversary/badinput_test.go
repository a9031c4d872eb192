package adversary

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

//lint:ignore SA1012 deliberately nil
func TestAdvNilContextAndBadKeys(t *testing.T) {
	store, _ := meml2.NewShared(t.Name(), nil)
	defer store.Close()
	c := newCache(t, core.Options{L2: store})
	var nilCtx context.Context
	mustErr := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: nil error", name)
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("panic with nil ctx: %v", r)
			}
		}()
		_, err := core.GetOrSet(nilCtx, c, "k", constF("v"))
		mustErr("GetOrSet nil ctx", err)
		_, _, err = core.Get[string](nilCtx, c, "k")
		mustErr("Get nil ctx", err)
		mustErr("Set nil ctx", core.Set(nilCtx, c, "k", "v"))
		_, err = core.GetOrSetMany(nilCtx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) { return nil, nil })
		mustErr("GetOrSetMany nil ctx", err)
		mustErr("Remove nil ctx", c.Remove(nilCtx, "k"))
		mustErr("Expire nil ctx", c.Expire(nilCtx, "k"))
		mustErr("RemoveByTag nil ctx", c.RemoveByTag(nilCtx, "t"))
		mustErr("Clear nil ctx", c.Clear(nilCtx, false))
		mustErr("Ready nil ctx", c.Ready(nilCtx))
	}()
	ctx := context.Background()
	for _, k := range []string{"", "__strata:clear-remove", "__strata:tag-remove:x", strings.Repeat("x", 70000)} {
		_, err := core.GetOrSet(ctx, c, k, constF("v"))
		mustErr("GetOrSet "+k[:min(len(k), 30)], err)
		mustErr("Set "+k[:min(len(k), 30)], core.Set(ctx, c, k, "v"))
		_, err = core.GetOrSetMany(ctx, c, []string{"ok", k}, func(context.Context, []string) (map[string]string, error) { return nil, nil })
		mustErr("GetOrSetMany "+k[:min(len(k), 30)], err)
		mustErr("Remove "+k[:min(len(k), 30)], c.Remove(ctx, k))
	}
	// reserved prefix as a tag
	mustErr("Set with empty tag", core.Set(ctx, c, "k", "v", core.WithTags("")))
	// A cancelled ctx: GetOrSet returns without caching garbage.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	v, err := core.GetOrSet(cctx, c, "kc", func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
		time.Sleep(10 * time.Millisecond)
		return "v", nil
	})
	t.Logf("GetOrSet with a cancelled ctx: %q %v", v, err)
}
