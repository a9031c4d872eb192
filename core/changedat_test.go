package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// TestChangedAtOrdersAChangeAfterItsSourceTime: a Remove stamped with the
// time of the change at its source (a database commit) wins over a write by
// a node whose clock is behind that time, so a value read before the change
// cannot be cached over it. Without WithChangedAt the later Set wins.
func TestChangedAtOrdersAChangeAfterItsSourceTime(t *testing.T) {
	ctx := context.Background()
	commit := time.Now().Add(30 * time.Second) // the source's clock is ahead
	for _, tc := range []struct {
		name      string
		opts      []core.EntryOption
		wantFound bool
	}{
		{"WithChangedAt", []core.EntryOption{core.WithChangedAt(commit)}, false},
		{"without", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := t.Name()
			mk := func() *core.Cache {
				store, _ := meml2.NewShared(name, nil)
				t.Cleanup(func() { store.Close() })
				return newCache(t, core.Options{Name: "changedat", L2: store})
			}
			invalidator, writer, reader := mk(), mk(), mk()
			if err := invalidator.Remove(ctx, "k", tc.opts...); err != nil {
				t.Fatal(err)
			}
			// writer never heard of the Remove: its version is its own clock's.
			if err := core.Set(ctx, writer, "k", "read before the commit", core.WithDuration(time.Hour)); err != nil {
				t.Fatal(err)
			}
			v, found := get(t, reader, "k")
			if found != tc.wantFound {
				t.Fatalf("reader found=%v (%q), want %v", found, v, tc.wantFound)
			}
		})
	}
}

func TestChangedAtZeroTimeIsAnOptionError(t *testing.T) {
	c := newCache(t, core.Options{})
	var oe *core.OptionError
	err := c.Remove(context.Background(), "k", core.WithChangedAt(time.Time{}))
	if !errors.As(err, &oe) || oe.Field != "WithChangedAt" {
		t.Fatalf("Remove with WithChangedAt(zero) = %v, want an *OptionError for WithChangedAt", err)
	}
}

func TestChangedAtFarAheadIsAnOptionError(t *testing.T) {
	c := newCache(t, core.Options{})
	var oe *core.OptionError
	err := c.Remove(context.Background(), "k", core.WithChangedAt(time.Now().Add(2*time.Hour)))
	if !errors.As(err, &oe) || oe.Field != "WithChangedAt" {
		t.Fatalf("Remove with WithChangedAt 2 h ahead = %v, want an *OptionError for WithChangedAt", err)
	}
	if err := core.Set(context.Background(), c, "k", "v", core.WithChangedAt(time.Now().Add(3*time.Hour))); !errors.As(err, &oe) {
		t.Fatalf("Set with WithChangedAt 3 h ahead = %v, want an *OptionError", err)
	}
	if _, found, _ := core.Get[string](context.Background(), c, "k"); found {
		t.Error("the refused Set was applied")
	}
}
