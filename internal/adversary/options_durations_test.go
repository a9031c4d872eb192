package adversary

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// Attacks on the validation of every duration option: negative, zero and
// huge (beyond MaxDuration, math.MaxInt64) values of each time.Duration
// field of Options and EntryOptions. Promised: New and every call reject an
// invalid value with an *OptionError naming the field (no panic); a value
// beyond MaxDuration counts as MaxDuration ("math.MaxInt64 is a valid way to
// say never"), so it must work, not overflow into a deadline in the past.

var hugeDurations = []time.Duration{core.MaxDuration + 1, math.MaxInt64, math.MaxInt64 - 1, 1<<62 + 3}
var negativeDurations = []time.Duration{-1, -time.Hour, math.MinInt64}

func durationFields(typ reflect.Type) []string {
	var names []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.IsExported() && f.Type == reflect.TypeOf(time.Duration(0)) {
			names = append(names, f.Name)
		}
	}
	return names
}

func optionErrorNames(err error, field string) bool {
	var oe *core.OptionError
	return errors.As(err, &oe) && strings.Contains(oe.Field, field) && strings.Contains(err.Error(), field)
}

// newValidationNodes starts two nodes on one meml2 and one bus with o
// adjusted by mod; the first New's error is returned (and nothing is
// started then).
func newValidationNodes(t *testing.T, mod func(o *core.Options)) (a, b *core.Cache, err error) {
	t.Helper()
	name := fmt.Sprintf("optv-%d", seq.Add(1))
	bus := membackplane.NewBus()
	mk := func(id string, apply bool) (*core.Cache, error) {
		store, err := meml2.NewShared(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		bp := bus.Connect(nil)
		o := core.Options{Name: "optv", InstanceID: id, L2: store, Backplane: bp, CloseTimeout: time.Second}
		if apply {
			mod(&o)
		}
		c, err := core.New(o)
		if err != nil {
			store.Close()
			bp.Close()
			return nil, err
		}
		t.Cleanup(func() { _ = c.Close(); store.Close(); bp.Close() })
		return c, nil
	}
	if a, err = mk("a", true); err != nil {
		return nil, nil, err
	}
	b, err = mk("b", false)
	if err != nil {
		t.Fatal(err)
	}
	// A node's first reads while its subscription goes live may miss an
	// entry L2 holds (see the report): wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*core.Cache{a, b} {
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, nil
}

// exercise runs a few operations on a (with per-call opts) and checks that
// they work and that b reads what a wrote through L2.
func exercise(t *testing.T, a, b *core.Cache, opts ...core.EntryOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := core.Set(ctx, a, "s", "set", opts...); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, found, err := core.Get[string](ctx, a, "s", opts...); err != nil || !found || v != "set" {
		t.Fatalf("Get after Set on the same node: %q %v %v", v, found, err)
	}
	if v, err := core.GetOrSet(ctx, a, "m", constF("made"), opts...); err != nil || v != "made" {
		t.Fatalf("GetOrSet miss: %q %v", v, err)
	}
	if v, err := core.GetOrSet(ctx, a, "m", failF(errSourceDown), opts...); err != nil || v != "made" {
		t.Fatalf("GetOrSet hit: %q %v", v, err)
	}
	if v, found, err := core.Get[string](ctx, b, "s"); err != nil || !found || v != "set" {
		t.Fatalf("the other node reading a's Set from L2: %q %v %v", v, found, err)
	}
	if err := a.Remove(ctx, "s", opts...); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, found, _ := core.Get[string](ctx, a, "s"); found {
		t.Fatal("found after Remove")
	}
	if err := a.Expire(ctx, "m", opts...); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	if err := a.RemoveByTag(ctx, "t", opts...); err != nil {
		t.Fatalf("RemoveByTag: %v", err)
	}
	st := a.Stats()
	if st.L2Errors != 0 || st.BackplaneErrors != 0 || st.RecoveryQueued != 0 {
		t.Fatalf("L2 errors %d, backplane errors %d, queued %d: a duration overflowed into a deadline in the past?", st.L2Errors, st.BackplaneErrors, st.RecoveryQueued)
	}
}

func TestOptionsEveryDurationNegativeZeroHuge(t *testing.T) {
	for _, field := range durationFields(reflect.TypeOf(core.Options{})) {
		t.Run(field, func(t *testing.T) {
			set := func(d time.Duration) func(o *core.Options) {
				return func(o *core.Options) { reflect.ValueOf(o).Elem().FieldByName(field).SetInt(int64(d)) }
			}
			for _, d := range negativeDurations {
				a, b, err := newValidationNodes(t, set(d))
				if field == "BackplaneProbeInterval" { // negative: no probes
					if err != nil {
						t.Fatalf("%v: %v", d, err)
					}
					exercise(t, a, b)
					continue
				}
				if !optionErrorNames(err, field) {
					t.Fatalf("Options.%s = %v: New gives %v, want an *OptionError naming the field", field, d, err)
				}
			}
			for _, d := range append([]time.Duration{0}, hugeDurations...) {
				a, b, err := newValidationNodes(t, set(d))
				if err != nil {
					if d == 0 || !optionErrorNames(err, field) {
						t.Fatalf("Options.%s = %v: %v", field, d, err)
					}
					t.Logf("Options.%s = %v refused: %v", field, d, err)
					continue
				}
				exercise(t, a, b)
			}
		})
	}
}

func TestEntryOptionsEveryDurationNegativeZeroHuge(t *testing.T) {
	base := core.DefaultEntryOptions()
	base.FailSafe = true
	base.Tags = []string{"t"}
	for _, field := range durationFields(reflect.TypeOf(core.EntryOptions{})) {
		t.Run(field, func(t *testing.T) {
			with := func(d time.Duration) core.EntryOptions {
				eo := base
				reflect.ValueOf(&eo).Elem().FieldByName(field).SetInt(int64(d))
				return eo
			}
			for _, d := range negativeDurations {
				eo := with(d)
				_, _, err := newValidationNodes(t, func(o *core.Options) { o.DefaultEntryOptions = &eo })
				if !optionErrorNames(err, field) {
					t.Fatalf("DefaultEntryOptions.%s = %v: New gives %v, want an *OptionError naming the field", field, d, err)
				}
				a, _, err := newValidationNodes(t, func(*core.Options) {})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if err := core.Set(ctx, a, "k", "v", core.WithEntryOptions(eo)); !optionErrorNames(err, field) {
					t.Fatalf("Set with %s = %v: %v, want an *OptionError naming the field", field, d, err)
				}
				if _, err := core.GetOrSet(ctx, a, "k", constF("v"), core.WithEntryOptions(eo)); !optionErrorNames(err, field) {
					t.Fatalf("GetOrSet with %s = %v: %v", field, d, err)
				}
				if _, found, _ := core.Get[string](ctx, a, "k"); found {
					t.Fatalf("a call refused for %s = %v cached its value", field, d)
				}
			}
			for _, d := range append([]time.Duration{0}, hugeDurations...) {
				eo := with(d)
				a, b, err := newValidationNodes(t, func(o *core.Options) { o.DefaultEntryOptions = &eo })
				if err != nil {
					if d == 0 && optionErrorNames(err, field) {
						t.Logf("DefaultEntryOptions.%s = 0 refused: %v", field, err)
						continue
					}
					t.Fatalf("DefaultEntryOptions.%s = %v: %v", field, d, err)
				}
				exercise(t, a, b)
				a2, b2, err := newValidationNodes(t, func(*core.Options) {})
				if err != nil {
					t.Fatal(err)
				}
				exercise(t, a2, b2, core.WithEntryOptions(eo))
			}
		})
	}
}

// TestEntryOptionFunctionsNegativeAndHuge: the With... functions with
// negative and huge durations.
func TestEntryOptionFunctionsNegativeAndHuge(t *testing.T) {
	mk := map[string]func(d time.Duration) core.EntryOption{
		"Duration":          core.WithDuration,
		"L1Duration":        core.WithL1Duration,
		"L2Duration":        core.WithL2Duration,
		"Jitter":            core.WithJitter,
		"SlidingExpiration": core.WithSlidingExpiration,
		"FailSafe":          func(d time.Duration) core.EntryOption { return core.WithFailSafe(d, d) },
		"L2FailSafeMax":     core.WithL2FailSafeMaxDuration,
		"FactoryTimeouts":   func(d time.Duration) core.EntryOption { return core.WithFactoryTimeouts(d, d) },
		"L2Timeouts":        func(d time.Duration) core.EntryOption { return core.WithL2Timeouts(d, d) },
		"LockTimeout":       core.WithLockTimeout,
		"DistLockTimeout":   core.WithDistributedLockTimeout,
	}
	for name, opt := range mk {
		t.Run(name, func(t *testing.T) {
			a, b, err := newValidationNodes(t, func(*core.Options) {})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range negativeDurations {
				var oe *core.OptionError
				err := core.Set(context.Background(), a, "k", "v", opt(d))
				if !errors.As(err, &oe) || oe.Field == "" {
					t.Fatalf("With%s(%v): %v, want an *OptionError naming a field", name, d, err)
				}
			}
			for _, d := range hugeDurations {
				exercise(t, a, b, opt(d), core.WithTags("t"))
			}
		})
	}
}
