package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/bench"
)

// results is everything one run measured, and where.
type results struct {
	Date                time.Time
	CPU                 string
	Cores               int
	GoVersion, Commit   string
	LoadStart, LoadEnd  string
	Command             string
	Quick               bool
	Count               int
	BenchTime           time.Duration
	Duration            time.Duration
	Procs               []int // GOMAXPROCS values of the hit benchmark
	Hit                 []hitResult
	ZipfS               []float64
	Capacities          []int
	Keys, Requests      int
	Ratios              []ratioResult
	Trips               int
	Latency             []latencyResult
	Update              []updateResult
	LatencySkipped      bool
	LatencySkippedCause string
}

// hitResult is one HitCase: medians over the rounds, per GOMAXPROCS.
type hitResult struct {
	Name, API string
	Reference bool
	NsPerOp   []float64 // per Procs
	Allocs    []int64
	Bytes     []int64
}

// ratioResult is one policy's hit ratios: Ratio[c][s] for Capacities[c]
// and ZipfS[s].
type ratioResult struct {
	Name, Capacity string
	AsyncSet       bool
	Ratio          [][]float64
}

// latencyResult is one transport's trips, sorted.
type latencyResult struct {
	Transport   string
	Strata, Raw []time.Duration
}

// updateResult is one transport's update trips (set on A until B serves
// the new value), sorted: strata's default (B re-reads L2), strata's with
// the value on the backplane, and the raw clients' floor.
type updateResult struct {
	Transport          string
	Invalidate, Values []time.Duration
	Raw                []time.Duration
}

// run measures everything cfg asks for, logging progress to log.
func run(ctx context.Context, cfg config, log io.Writer) (*results, error) {
	start := time.Now()
	r := &results{
		Date: start.UTC(), CPU: cpuModel(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: gitCommit(),
		LoadStart: loadAvg(), Command: cfg.Command, Quick: cfg.Quick, Count: cfg.Count, BenchTime: cfg.BenchTime,
		Procs: []int{1, 2}, ZipfS: []float64{1.01, 1.05, 1.1, 1.15, 1.2}, Capacities: []int{1_000, 10_000},
		Keys: 100_000, Requests: cfg.Requests, Trips: cfg.Trips,
	}
	if err := measureHits(ctx, r, log); err != nil {
		return nil, err
	}
	if err := measureRatios(ctx, r, log); err != nil {
		return nil, err
	}
	if cfg.SkipLatency {
		r.LatencySkipped, r.LatencySkippedCause = true, "-skip-latency"
	} else {
		if err := measureLatency(ctx, r, log); err != nil {
			return nil, err
		}
		if err := measureUpdate(ctx, r, log); err != nil {
			return nil, err
		}
	}
	r.LoadEnd = loadAvg()
	r.Duration = time.Since(start).Round(time.Second)
	return r, nil
}

// measureHits runs every HitCase Count times at each GOMAXPROCS, the cases
// interleaved in each round so that a change of the machine's load hits
// them alike, and keeps the median.
func measureHits(ctx context.Context, r *results, log io.Writer) error {
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	cases := bench.L1HitCases()
	ns := make([][][]float64, len(cases)) // [case][procs][round]
	r.Hit = make([]hitResult, len(cases))
	for i, hc := range cases {
		ns[i] = make([][]float64, len(r.Procs))
		r.Hit[i] = hitResult{Name: hc.Name, API: hc.API, Reference: hc.Reference,
			NsPerOp: make([]float64, len(r.Procs)), Allocs: make([]int64, len(r.Procs)), Bytes: make([]int64, len(r.Procs))}
	}
	for round := range r.Count {
		for p, procs := range r.Procs {
			runtime.GOMAXPROCS(procs)
			for i, hc := range cases {
				if err := ctx.Err(); err != nil {
					return err
				}
				res := testing.Benchmark(hc.Benchmark)
				if res.N == 0 {
					return fmt.Errorf("L1 hit benchmark of %s %s failed", hc.Name, hc.API)
				}
				ns[i][p] = append(ns[i][p], float64(res.T.Nanoseconds())/float64(res.N))
				r.Hit[i].Allocs[p], r.Hit[i].Bytes[p] = res.AllocsPerOp(), res.AllocedBytesPerOp()
				fmt.Fprintf(log, "hit round %d/%d GOMAXPROCS=%d %-32s %-36s %10.1f ns/op\n", round+1, r.Count, procs, hc.Name, hc.API, ns[i][p][round])
			}
		}
	}
	for i := range cases {
		for p := range r.Procs {
			r.Hit[i].NsPerOp[p] = median(ns[i][p])
		}
	}
	return nil
}

// measureRatios plays each Zipf trace on each policy at each capacity.
func measureRatios(ctx context.Context, r *results, log io.Writer) error {
	policies := bench.HitRatioPolicies()
	r.Ratios = make([]ratioResult, len(policies))
	for i, p := range policies {
		r.Ratios[i] = ratioResult{Name: p.Name, Capacity: p.Capacity, AsyncSet: p.AsyncSet, Ratio: make([][]float64, len(r.Capacities))}
		for c := range r.Capacities {
			r.Ratios[i].Ratio[c] = make([]float64, len(r.ZipfS))
		}
	}
	for si, s := range r.ZipfS {
		trace := bench.ZipfTrace(s, r.Keys, r.Requests, 1)
		for ci, capacity := range r.Capacities {
			for i, p := range policies {
				if err := ctx.Err(); err != nil {
					return err
				}
				t0 := time.Now()
				ratio, err := bench.HitRatio(p, capacity, trace)
				if err != nil {
					return fmt.Errorf("hit ratio of %s: %w", p.Name, err)
				}
				r.Ratios[i].Ratio[ci][si] = ratio
				fmt.Fprintf(log, "hit ratio s=%.2f capacity=%d %-26s %.4f (%v)\n", s, capacity, p.Name, ratio, time.Since(t0).Round(time.Millisecond))
			}
		}
	}
	return nil
}

// latencyChunks splits each path's trips in chunks run alternately
// (strata, raw, strata, ...) so that a change of load hits both alike.
const latencyChunks = 4

func measureLatency(ctx context.Context, r *results, log io.Writer) error {
	servers := bench.ServersFromEnv()
	for _, tr := range bench.Transports {
		lr := latencyResult{Transport: tr}
		for chunk := range latencyChunks {
			n := r.Trips / latencyChunks
			if chunk == latencyChunks-1 {
				n = r.Trips - n*(latencyChunks-1)
			}
			s, err := bench.InvalidationLatency(ctx, servers, tr, n)
			if err != nil {
				return fmt.Errorf("%s strata latency: %w", tr, err)
			}
			raw, err := bench.RawLatency(ctx, servers, tr, n)
			if err != nil {
				return fmt.Errorf("%s raw latency: %w", tr, err)
			}
			lr.Strata, lr.Raw = append(lr.Strata, s...), append(lr.Raw, raw...)
		}
		slices.Sort(lr.Strata)
		slices.Sort(lr.Raw)
		fmt.Fprintf(log, "latency %-5s strata p50 %v p99 %v; raw p50 %v p99 %v\n", tr,
			bench.Percentile(lr.Strata, 0.5), bench.Percentile(lr.Strata, 0.99), bench.Percentile(lr.Raw, 0.5), bench.Percentile(lr.Raw, 0.99))
		r.Latency = append(r.Latency, lr)
	}
	return nil
}

// measureUpdate makes, per transport, r.Trips rounds of update trips,
// one trip of each path in turn (strata's, strata's with the value on the
// backplane when core can, the raw clients'), on paths it closes after.
func measureUpdate(ctx context.Context, r *results, log io.Writer) error {
	servers := bench.ServersFromEnv()
	for _, tr := range bench.Transports {
		var paths []*bench.Path
		closeAll := func() error {
			var errs []error
			for _, p := range paths {
				errs = append(errs, p.Close())
			}
			return errors.Join(errs...)
		}
		open := func(p *bench.Path, err error) error {
			if err != nil {
				return fmt.Errorf("%s update path: %w", tr, err)
			}
			paths = append(paths, p)
			return nil
		}
		err := open(bench.NewUpdatePath(ctx, servers, tr, bench.UpdateOptions{}))
		if err == nil {
			err = open(bench.NewUpdatePath(ctx, servers, tr, bench.UpdateOptions{ValueOnBackplane: true}))
		}
		if err == nil {
			err = open(bench.NewRawUpdatePath(ctx, servers, tr))
		}
		var lat [][]time.Duration
		if err == nil {
			lat, err = bench.Interleave(ctx, r.Trips, paths...)
		}
		if err = errors.Join(err, closeAll()); err != nil {
			return err
		}
		for _, l := range lat {
			slices.Sort(l)
		}
		ur := updateResult{Transport: tr, Invalidate: lat[0], Values: lat[1], Raw: lat[2]}
		fmt.Fprintf(log, "update  %-5s strata p50 %v p99 %v; raw p50 %v p99 %v\n", tr,
			bench.Percentile(ur.Invalidate, 0.5), bench.Percentile(ur.Invalidate, 0.99), bench.Percentile(ur.Raw, 0.5), bench.Percentile(ur.Raw, 0.99))
		fmt.Fprintf(log, "update  %-5s strata, value on backplane: p50 %v p99 %v\n", tr, bench.Percentile(ur.Values, 0.5), bench.Percentile(ur.Values, 0.99))
		r.Update = append(r.Update, ur)
	}
	return nil
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuModel is the "model name" of /proc/cpuinfo, or GOARCH elsewhere.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// loadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
