package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
)

// servers returns the test servers, skipping tb (failing it under
// CI=true) when one does not answer.
func servers(tb testing.TB) Servers {
	tb.Helper()
	return Servers{RedisAddr: redistest.Addr(tb), NATSURL: natstest.URL(tb), AMQPURL: rabbittest.URL(tb)}
}

// BenchmarkInvalidationLatency reports the p50 and p99 of one trip, strata
// (set on A → message on B) and raw (publish → receive), per transport.
// b.N is the number of trips: run with -benchtime 2000x.
func BenchmarkInvalidationLatency(b *testing.B) {
	s := servers(b)
	for _, tr := range Transports {
		for _, kind := range []string{"strata", "raw"} {
			b.Run(tr+"/"+kind, func(b *testing.B) {
				measure := InvalidationLatency
				if kind == "raw" {
					measure = RawLatency
				}
				lat, err := measure(context.Background(), s, tr, b.N)
				if err != nil {
					b.Fatal(err)
				}
				slices.Sort(lat)
				b.ReportMetric(float64(Percentile(lat, 0.5).Microseconds()), "p50-µs")
				b.ReportMetric(float64(Percentile(lat, 0.99).Microseconds()), "p99-µs")
			})
		}
	}
}

// TestLatencyTrips, per transport: a few trips of InvalidationLatency and
// RawLatency, and of their paths made side by side, a strata trip and a
// raw one in turn as a paired benchmark makes them, each measured and
// plausible (positive, under the per-trip timeout); a trip whose context
// has ended fails with the context's error; Close twice is fine. An
// unknown transport is an error naming it.
func TestLatencyTrips(t *testing.T) {
	s := servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plausible := func(t *testing.T, what string, d time.Duration) {
		t.Helper()
		if d <= 0 || d >= roundTimeout {
			t.Errorf("%s: trip of %v", what, d)
		}
	}
	for _, tr := range Transports {
		t.Run(tr, func(t *testing.T) {
			for kind, measure := range map[string]func(context.Context, Servers, string, int) ([]time.Duration, error){
				"strata": InvalidationLatency, "raw": RawLatency,
			} {
				lat, err := measure(ctx, s, tr, 5)
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if len(lat) != 5 {
					t.Fatalf("%s: %d trips, want 5", kind, len(lat))
				}
				for _, d := range lat {
					plausible(t, kind, d)
				}
			}

			strata, err := NewInvalidationPath(ctx, s, tr)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := NewRawPath(ctx, s, tr)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				for _, p := range []*Path{strata, raw} {
					d, err := p.Trip(ctx)
					if err != nil {
						t.Fatalf("%s: %v", p.what, err)
					}
					plausible(t, p.what, d)
				}
			}
			ended, end := context.WithCancel(ctx)
			end()
			for _, p := range []*Path{strata, raw} {
				if _, err := p.Trip(ended); !errors.Is(err, context.Canceled) {
					t.Errorf("%s: a trip on an ended context: %v, want %v", p.what, err, context.Canceled)
				}
				if err := p.Close(); err != nil {
					t.Errorf("%s: Close: %v", p.what, err)
				}
				if err := p.Close(); err != nil {
					t.Errorf("%s: Close again: %v", p.what, err)
				}
			}
		})
	}
	for _, open := range []func(context.Context, Servers, string) (*Path, error){NewInvalidationPath, NewRawPath} {
		if _, err := open(ctx, s, "carrier-pigeon"); err == nil || !strings.Contains(err.Error(), `"carrier-pigeon"`) {
			t.Errorf("an unknown transport: %v, want an error naming it", err)
		}
	}
	if _, err := RawLatency(ctx, s, "carrier-pigeon", 1); err == nil {
		t.Error("an unknown transport is not an error")
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]time.Duration{0: 1, 0.5: 5, 0.9: 9, 0.99: 10, 1: 10} {
		if got := Percentile(d, p); got != want {
			t.Errorf("Percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
}

// TestUpdateTrips, per transport: a few rounds of NewUpdatePath's trips
// (and of its ValueOnBackplane variant's), interleaved with
// NewRawUpdatePath's, each plausible and each serving the value just set (a
// trip checks it); a trip whose value was overwritten before B reads it
// fails, naming both values. An unknown transport is an error naming it.
func TestUpdateTrips(t *testing.T) {
	s := servers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(t *testing.T, tr string, values bool) *Path {
		t.Helper()
		var p *Path
		var err error
		if values {
			p, err = NewUpdatePath(ctx, s, tr, UpdateOptions{ValueOnBackplane: true})
		} else {
			p, err = NewUpdatePath(ctx, s, tr, UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("%s: Close: %v", p.what, err)
			}
		})
		return p
	}
	openRaw := func(t *testing.T, tr string) *Path {
		t.Helper()
		p, err := NewRawUpdatePath(ctx, s, tr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("%s: Close: %v", p.what, err)
			}
		})
		return p
	}
	for _, tr := range Transports {
		t.Run(tr, func(t *testing.T) {
			paths := []*Path{open(t, tr, false), openRaw(t, tr), open(t, tr, true)}
			for range 3 {
				for _, p := range paths {
					d, err := p.Trip(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if d <= 0 || d >= roundTimeout {
						t.Errorf("%s: trip of %v", p.what, d)
					}
				}
			}
			// Overwritten in L2 between A's write and B's read: the
			// check must catch it. (Not on the ValueOnBackplane path,
			// where B rightly serves the value its message carried.)
			for _, p := range paths[:2] {
				send := p.send
				p.send = func(ctx context.Context, i int) error {
					if err := send(ctx, i); err != nil {
						return err
					}
					return send(ctx, i+1000)
				}
				i := p.trips
				_, err := p.Trip(ctx)
				if want := fmt.Sprintf("served %q, want %q", strconv.Itoa(i+1000), strconv.Itoa(i)); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: a trip whose value was overwritten: %v, want an error with %s", p.what, err, want)
				}
			}
		})
	}
	for _, err := range []error{
		func() error { _, err := NewUpdatePath(ctx, s, "carrier-pigeon", UpdateOptions{}); return err }(),
		func() error { _, err := NewRawUpdatePath(ctx, s, "carrier-pigeon"); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), `"carrier-pigeon"`) {
			t.Errorf("an unknown transport: %v, want an error naming it", err)
		}
	}
}

// TestInterleave: Interleave returns n trips per path, in the order of the
// paths, and stops at the first failed trip.
func TestInterleave(t *testing.T) {
	ctx := context.Background()
	fake := func(d time.Duration) *Path {
		got := make(chan time.Time, 1)
		p := &Path{what: "fake " + d.String(), got: got}
		p.send = func(context.Context, int) error {
			got <- time.Now().Add(d)
			return nil
		}
		return p
	}
	slow, fast := fake(time.Hour), fake(time.Minute)
	lat, err := Interleave(ctx, 4, slow, fast)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 2 || len(lat[0]) != 4 || len(lat[1]) != 4 {
		t.Fatalf("got %d paths of %v trips, want 2 of 4", len(lat), lat)
	}
	for i, want := range []time.Duration{time.Hour, time.Minute} {
		for _, d := range lat[i] {
			if d < want || d > want+time.Second {
				t.Errorf("path %d: trip of %v, want about %v", i, d, want)
			}
		}
	}
	if slow.trips != warmup+4 {
		t.Errorf("%d trips made, want %d (%d unmeasured)", slow.trips, warmup+4, warmup)
	}
	failing := fake(0)
	failing.send = func(context.Context, int) error { return errors.New("boom") }
	if _, err := Interleave(ctx, 4, fast, failing); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a failing path: %v, want its error", err)
	}
}
