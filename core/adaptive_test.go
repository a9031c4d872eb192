package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestAdaptiveCaching(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		adapt   func(o *core.EntryOptions)
		advance time.Duration
		tag     string // RemoveByTag before reading, if set
		found   bool
	}{
		{"factory shortens duration", func(o *core.EntryOptions) { o.Duration = time.Second }, time.Second, "", false},
		{"factory lengthens duration", func(o *core.EntryOptions) { o.Duration = time.Hour }, time.Minute, "", true},
		{"factory adds a tag", func(o *core.EntryOptions) { o.Tags = append(o.Tags, "dynamic") }, 0, "dynamic", false},
		{"factory skips caching", func(o *core.EntryOptions) { o.SkipL1Write = true }, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c := newCache(t, core.Options{Clock: clock})
			v := mustGetOrSet(t, c, "k", func(_ context.Context, fc *core.FactoryContext[int]) (int, error) {
				tt.adapt(fc.Options)
				return 1, nil
			}, core.WithDuration(30*time.Second))
			if v != 1 {
				t.Fatalf("got %d", v)
			}
			clock.Advance(tt.advance)
			if tt.tag != "" {
				c.RemoveByTag(ctx, tt.tag)
			}
			if _, found, _ := core.Get[int](ctx, c, "k"); found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
		})
	}
}

func TestFactorySettingInvalidOptionsIsAnError(t *testing.T) {
	c := newCache(t, core.Options{Clock: newFakeClock()})
	_, err := core.GetOrSet(context.Background(), c, "k", func(_ context.Context, fc *core.FactoryContext[int]) (int, error) {
		fc.Options.Duration = -time.Second
		return 1, nil
	})
	var oe *core.OptionError
	if !errors.As(err, &oe) || oe.Field != "FactoryContext.Options.Duration" {
		t.Fatalf("err = %v, want an *OptionError naming FactoryContext.Options.Duration", err)
	}
	if _, ok, _ := core.Get[int](context.Background(), c, "k"); ok {
		t.Fatal("a result with invalid options was cached")
	}
}

func TestFactoryOptionsDoNotLeakIntoDefaults(t *testing.T) {
	c := newCache(t, core.Options{Clock: newFakeClock()})
	mustGetOrSet(t, c, "a", func(_ context.Context, fc *core.FactoryContext[int]) (int, error) {
		fc.Options.Duration = time.Nanosecond
		fc.Options.Tags = append(fc.Options.Tags, "x")
		return 1, nil
	})
	if d := c.DefaultEntryOptions(); d.Duration != core.DefaultDuration || len(d.Tags) != 0 {
		t.Fatalf("defaults changed by a factory: %+v", d)
	}
}

func TestConditionalRefresh(t *testing.T) {
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)}
	lm := time.Unix(1_600_000_000, 0)
	v := mustGetOrSet(t, c, "page", func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
		if fc.ETag != "" {
			t.Errorf("first call sees ETag %q, want none", fc.ETag)
		}
		if _, err := fc.NotModified(); !errors.Is(err, core.ErrNoStaleValue) {
			t.Errorf("NotModified without a stale value = %v, want ErrNoStaleValue", err)
		}
		return fc.Modified("v1", `"abc"`, lm)
	}, opts...)
	if v != "v1" {
		t.Fatalf("got %q", v)
	}
	clock.Advance(time.Minute)
	v = mustGetOrSet(t, c, "page", func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
		if fc.ETag != `"abc"` || !fc.LastModified.Equal(lm) {
			t.Errorf("refresh sees ETag %q, LastModified %v; want the stored ones", fc.ETag, fc.LastModified)
		}
		return fc.NotModified()
	}, opts...)
	if v != "v1" {
		t.Fatalf("NotModified returned %q, want the stale v1", v)
	}
	// NotModified made it fresh again, keeping the ETag.
	if _, ok, _ := core.Get[string](context.Background(), c, "page"); !ok {
		t.Fatal("NotModified did not re-cache the value as fresh")
	}
	clock.Advance(time.Minute)
	mustGetOrSet(t, c, "page", func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
		if fc.ETag != `"abc"` {
			t.Errorf("ETag after NotModified = %q, want it kept", fc.ETag)
		}
		return "v2", nil
	}, opts...)
}
