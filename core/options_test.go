package core_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	bad := func(mod func(*core.EntryOptions)) *core.EntryOptions {
		o := core.DefaultEntryOptions()
		mod(&o)
		return &o
	}
	tests := []struct {
		name  string
		o     core.Options
		field string
	}{
		{"negative L1MaxEntries", core.Options{L1MaxEntries: -1}, "Options.L1MaxEntries"},
		{"weight without weigher", core.Options{L1MaxWeight: 10}, "Options.L1Weigher"},
		{"weigher without weight", core.Options{L1Weigher: func(string, any) uint32 { return 1 }}, "Options.L1MaxWeight"},
		{"negative CloseTimeout", core.Options{CloseTimeout: -time.Second}, "Options.CloseTimeout"},
		{"nil observer", core.Options{Observers: []core.Observer{nil}}, "Options.Observers"},
		{"zero Duration", core.Options{DefaultEntryOptions: &core.EntryOptions{}}, "Options.DefaultEntryOptions.Duration"},
		{"negative Jitter", core.Options{DefaultEntryOptions: bad(func(o *core.EntryOptions) { o.Jitter = -1 })}, "Options.DefaultEntryOptions.Jitter"},
		{"negative soft timeout", core.Options{DefaultEntryOptions: bad(func(o *core.EntryOptions) { o.FactorySoftTimeout = -1 })}, "Options.DefaultEntryOptions.FactorySoftTimeout"},
		{"threshold 1", core.Options{DefaultEntryOptions: bad(func(o *core.EntryOptions) { o.EagerRefreshThreshold = 1 })}, "Options.DefaultEntryOptions.EagerRefreshThreshold"},
		{"threshold negative", core.Options{DefaultEntryOptions: bad(func(o *core.EntryOptions) { o.EagerRefreshThreshold = -0.5 })}, "Options.DefaultEntryOptions.EagerRefreshThreshold"},
		{"fail-safe without throttle", core.Options{DefaultEntryOptions: bad(func(o *core.EntryOptions) { o.FailSafe, o.FailSafeThrottleDuration = true, 0 })}, "Options.DefaultEntryOptions.FailSafeThrottleDuration"},
		{"empty tag", core.Options{DefaultEntryOptions: bad(func(o *core.EntryOptions) { o.Tags = []string{"a", ""} })}, "Options.DefaultEntryOptions.Tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := core.New(tt.o)
			var oe *core.OptionError
			if !errors.As(err, &oe) || oe.Field != tt.field {
				if c != nil {
					c.Close()
				}
				t.Fatalf("New = %v, want an *OptionError for %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}
}

// TestEveryNegativeDurationRejected: each duration of EntryOptions, made
// negative alone, is reported by name (validation checks them all at once
// first, then names the culprit).
func TestEveryNegativeDurationRejected(t *testing.T) {
	typ := reflect.TypeFor[core.EntryOptions]()
	n := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type != reflect.TypeFor[time.Duration]() || f.Name == "Duration" {
			continue // Duration must be > 0: TestNewRejectsInvalidOptions
		}
		n++
		t.Run(f.Name, func(t *testing.T) {
			o := core.DefaultEntryOptions()
			reflect.ValueOf(&o).Elem().Field(i).SetInt(-1)
			c, err := core.New(core.Options{DefaultEntryOptions: &o})
			var oe *core.OptionError
			if !errors.As(err, &oe) || oe.Field != "Options.DefaultEntryOptions."+f.Name {
				if c != nil {
					c.Close()
				}
				t.Fatalf("New with %s = -1: %v, want an *OptionError naming it", f.Name, err)
			}
		})
	}
	if n < 13 {
		t.Fatalf("found %d durations besides Duration, want at least 13", n)
	}
}

func TestInvalidPerCallOptions(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	core.Set(ctx, c, "hit", 1)
	tests := []struct {
		name  string
		opt   core.EntryOption
		field string
	}{
		{"WithDuration 0", core.WithDuration(0), "WithDuration"},
		{"WithDuration negative", core.WithDuration(-time.Second), "WithDuration"},
		{"WithL1Duration negative", core.WithL1Duration(-1), "WithL1Duration"},
		{"WithJitter negative", core.WithJitter(-1), "WithJitter"},
		{"WithFailSafe negative", core.WithFailSafe(-1, 0), "WithFailSafe maxDuration"},
		{"WithFactoryTimeouts negative hard", core.WithFactoryTimeouts(0, -1), "WithFactoryTimeouts hard"},
		{"WithL2Timeouts negative soft", core.WithL2Timeouts(-1, 0), "WithL2Timeouts soft"},
		{"WithEagerRefresh 1.5", core.WithEagerRefresh(1.5), "WithEagerRefresh"},
		{"WithEagerRefresh 1", core.WithEagerRefresh(1), "WithEagerRefresh"},
		{"WithTags empty", core.WithTags("ok", ""), "WithTags"},
		{"WithLockTimeout negative", core.WithLockTimeout(-1), "WithLockTimeout"},
		{"WithEntryOptions zero duration", core.WithEntryOptions(core.EntryOptions{}), "WithEntryOptions.Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range []string{"hit", "miss"} { // both the hit and the miss path check
				_, err := core.GetOrSet(ctx, c, key, constant(1), tt.opt)
				var oe *core.OptionError
				if !errors.As(err, &oe) || oe.Field != tt.field {
					t.Fatalf("GetOrSet(%s) = %v, want an *OptionError for %s", key, err, tt.field)
				}
			}
			if err := core.Set(ctx, c, "k", 1, tt.opt); err == nil {
				t.Fatal("Set accepted the invalid option")
			}
		})
	}
}

func TestEmptyKeyAndTag(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	var oe *core.OptionError
	if _, err := core.GetOrSet(ctx, c, "", constant(1)); !errors.As(err, &oe) || oe.Field != "key" {
		t.Errorf("GetOrSet with empty key = %v", err)
	}
	if _, _, err := core.Get[int](ctx, c, ""); !errors.As(err, &oe) {
		t.Errorf("Get with empty key = %v", err)
	}
	if err := core.Set(ctx, c, "", 1); !errors.As(err, &oe) {
		t.Errorf("Set with empty key = %v", err)
	}
	if err := c.Remove(ctx, ""); !errors.As(err, &oe) {
		t.Errorf("Remove with empty key = %v", err)
	}
	if err := c.RemoveByTag(ctx, ""); !errors.As(err, &oe) || oe.Field != "tag" {
		t.Errorf("RemoveByTag with empty tag = %v", err)
	}
	if _, err := core.GetOrSet[int](ctx, c, "k", nil); !errors.As(err, &oe) || oe.Field != "factory" {
		t.Errorf("GetOrSet with nil factory = %v", err)
	}
}

func TestDefaultEntryOptionsApply(t *testing.T) {
	clock := newFakeClock()
	d := core.DefaultEntryOptions()
	d.Duration = time.Hour
	d.Tags = []string{"everything"}
	c := newCache(t, core.Options{Clock: clock, DefaultEntryOptions: &d})
	d.Tags[0] = "mutated after New" // the cache keeps its own copy
	mustGetOrSet(t, c, "k", constant(1))
	clock.Advance(59 * time.Minute)
	if _, ok, _ := core.Get[int](context.Background(), c, "k"); !ok {
		t.Fatal("default Duration of an hour not applied")
	}
	c.RemoveByTag(context.Background(), "everything")
	if _, ok, _ := core.Get[int](context.Background(), c, "k"); ok {
		t.Fatal("default tags not applied")
	}
}

func TestWeightBoundedL1(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock(), L1MaxWeight: 10_000,
		L1Weigher: func(_ string, v any) uint32 { return uint32(len(v.(string))) }})
	big := strings.Repeat("x", 1000)
	for i := range 100 {
		core.Set(ctx, c, "k"+strings.Repeat("y", i), big)
	}
	time.Sleep(100 * time.Millisecond) // otter applies evictions asynchronously
	if n := c.Len(); n > 12 {
		t.Fatalf("L1 holds %d entries of weight 1000 under a bound of 10,000", n)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{MaxKeyLength: 10, MaxTags: 2})
	var oe *core.OptionError
	if err := core.Set(ctx, c, strings.Repeat("k", 11), 1); !errors.As(err, &oe) || oe.Field != "key" {
		t.Errorf("an 11-byte key with MaxKeyLength 10 = %v", err)
	}
	if _, err := core.GetOrSet(ctx, c, strings.Repeat("k", 1<<20), constant(1)); !errors.As(err, &oe) || len(err.Error()) > 300 {
		t.Errorf("a 1 MiB key = %v (the error must stay short)", err)
	}
	if err := core.Set(ctx, c, "k", 1, core.WithTags("a", "b", "c")); !errors.As(err, &oe) || oe.Field != "EntryOptions.Tags" {
		t.Errorf("3 tags with MaxTags 2 = %v", err)
	}
	if err := c.RemoveByTag(ctx, strings.Repeat("t", 11)); !errors.As(err, &oe) {
		t.Errorf("an 11-byte tag = %v", err)
	}
	if _, err := core.New(core.Options{MaxKeyLength: 1 << 20}); !errors.As(err, &oe) || oe.Field != "Options.MaxKeyLength" {
		t.Errorf("MaxKeyLength 1 MiB = %v", err)
	}
}
