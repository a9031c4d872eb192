package sim

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var (
	flagSeed    = flag.Uint64("seed", 0, "run only this seed (with -drop: its shrunk plan)")
	flagDrop    = flag.String("drop", "", "what to drop from -seed's plan, as a failure prints it")
	flagTrace   = flag.Bool("fulltrace", false, "print -seed's whole trace")
	flagStrict  = flag.Bool("strict", false, "also flag first-contact losses (Options.Strict)")
	flagShrink  = flag.Bool("shrink", true, "shrink a failing seed before reporting it")
	flagAllow   = flag.String("allow", "", "count, without failing, the violations of these defect classes (e.g. A,B,C,D: defects known and still open)")
	flagMaxFail = flag.Int("maxfail", 3, "stop after this many failing seeds")
)

// allowed tallies the violations of the classes of -allow.
var allowed struct {
	sync.Mutex
	seeds map[string][]uint64
}

// isAllowed reports whether every violation of res is of a class -allow
// names, and tallies them.
func isAllowed(res *Result) bool {
	if *flagAllow == "" {
		return false
	}
	classes := strings.Split(*flagAllow, ",")
	for _, v := range res.Violations {
		if v.Defect == "" || !slices.Contains(classes, v.Defect) {
			return false
		}
	}
	allowed.Lock()
	defer allowed.Unlock()
	if allowed.seeds == nil {
		allowed.seeds = map[string][]uint64{}
	}
	seen := map[string]bool{}
	for _, v := range res.Violations {
		if !seen[v.Defect] {
			seen[v.Defect] = true
			allowed.seeds[v.Defect] = append(allowed.seeds[v.Defect], res.Plan.Seed)
		}
	}
	return true
}

// runOne runs plan p in a bubble of its own.
func runOne(t *testing.T, p *Plan, o Options) *Result {
	t.Helper()
	var res *Result
	func() {
		defer func() {
			// Goroutines left blocked when the run ends make synctest
			// panic; the run has reported them already.
			if r := recover(); r != nil && res == nil {
				panic(r)
			}
		}()
		synctest.Test(t, func(t *testing.T) {
			res = Run(p, o)
		})
	}()
	return res
}

// TestSim is the simulation: every seed kept in testdata/seeds.txt (each
// once failed), then -seeds fresh seeds from -start; or, with -seed, that one
// seed (with -drop, its shrunk plan). A failing seed is shrunk and reported
// with the command that replays it and the trace of what led to it.
//
// Without flags it is the CI run: the kept seeds and ciSeeds fresh ones (200
// with -short); STRATA_SIM=0 skips it.
func TestSim(t *testing.T) {
	if *flagSeed != 0 {
		d, err := ParseDrop(*flagDrop)
		if err != nil {
			t.Fatal(err)
		}
		checkSeed(t, *flagSeed, d, true)
		return
	}
	if os.Getenv("STRATA_SIM") == "0" && *flagSeeds == 0 {
		t.Skip("STRATA_SIM=0")
	}
	kept, err := keptSeeds()
	if err != nil {
		t.Fatal(err)
	}
	n := *flagSeeds
	switch {
	case n > 0:
	case testing.Short():
		n = ciSeeds / 10
	default:
		n = ciSeeds
	}
	var jobs []keptSeed
	jobs = append(jobs, kept...)
	for i := range n {
		jobs = append(jobs, keptSeed{seed: *flagStart + uint64(i)})
	}
	var (
		mu     sync.Mutex
		failed int
		done   int
	)
	start := time.Now()
	workers := runtime.GOMAXPROCS(0)
	t.Run("seeds", func(t *testing.T) {
		for w := range workers {
			t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
				t.Parallel()
				for i := w; i < len(jobs); i += workers {
					mu.Lock()
					stop := failed >= *flagMaxFail
					mu.Unlock()
					if stop {
						return
					}
					ok := checkKept(t, jobs[i])
					mu.Lock()
					done++
					if !ok {
						failed++
					}
					mu.Unlock()
				}
			})
		}
	})
	took := time.Since(start)
	t.Logf("%d seeds (%d kept in testdata) in %v: %.0f seeds/minute, %d failed", done, len(kept), took.Round(time.Millisecond),
		float64(done)/took.Minutes(), failed)
	for _, d := range sortedKeys(allowed.seeds) {
		seeds := allowed.seeds[d]
		t.Logf("known defect %s (-allow): %d seeds, the first %v", d, len(seeds), seeds[:min(len(seeds), 5)])
	}
}

// ciSeeds is how many fresh seeds TestSim runs by default: about a minute
// on the 2-core CI machine under -race.
const ciSeeds = 2000

// checkSeed runs one seed (its plan less drop) and reports a failure,
// shrunk, with its replay command. verbose logs a passing run's summary.
func checkSeed(t *testing.T, seed uint64, drop Drop, verbose bool) bool {
	t.Helper()
	run := func(p *Plan) *Result { return runOne(t, p, Options{Strict: *flagStrict}) }
	res := run(NewPlan(seed).Apply(drop))
	if *flagTrace {
		fmt.Fprintln(os.Stderr, res.Plan.Summary())
		fmt.Fprint(os.Stderr, res.Trace())
	}
	if verbose {
		t.Logf("seed %d: %d operations, %d deliveries, %v virtual, fingerprint %x", seed, res.Ops, res.Messages, res.Virtual, res.Fingerprint)
	}
	if !res.Failed() || isAllowed(res) {
		return true
	}
	full := res
	shrunk, runs := res, 0
	if *flagShrink && drop.empty() {
		shrunk, runs = Shrink(res, 200, run)
	}
	var b strings.Builder
	if shrunk != full {
		fmt.Fprintf(&b, "seed %d fails (%d violations, the first: %s); shrunk in %d runs to %d operations, %d faults, %d nodes.\n",
			seed, len(full.Violations), full.Violations[0].Kind, runs, len(shrunk.Plan.Ops), len(shrunk.Plan.Faults),
			shrunk.Plan.Cfg.Nodes-len(shrunk.Plan.Dropped.Nodes))
		fmt.Fprintf(&b, "the whole run: %s\n", replayCommand(seed, Drop{}))
	}
	b.WriteString(shrunk.Report(replayCommand(seed, shrunk.Plan.Dropped)))
	t.Error(b.String())
	return false
}

func replayCommand(seed uint64, d Drop) string {
	cmd := fmt.Sprintf("go test ./internal/sim -run 'TestSim$' -seed=%d", seed)
	if !d.empty() {
		cmd += fmt.Sprintf(" -drop='%s'", d)
	}
	return cmd + " -v"
}

type keptSeed struct {
	seed uint64
	drop Drop
	// open names the classes of a defect known and still open that the
	// seed shows: its violations of those classes are logged, not failed.
	open []string
}

// checkKept runs a seed; for a kept seed of an open defect, the violations of
// that defect's classes are logged (and a seed that no longer shows them
// says so), others fail.
func checkKept(t *testing.T, k keptSeed) bool {
	t.Helper()
	if len(k.open) == 0 {
		return checkSeed(t, k.seed, k.drop, false)
	}
	res := runOne(t, NewPlan(k.seed).Apply(k.drop), Options{Strict: *flagStrict})
	for _, v := range res.Violations {
		if !slices.Contains(k.open, v.Defect) {
			return checkSeed(t, k.seed, k.drop, false)
		}
	}
	if res.Failed() {
		t.Logf("seed %d still shows open defect %s", k.seed, strings.Join(k.open, ","))
	} else {
		t.Logf("seed %d no longer shows open defect %s: drop open= from testdata/seeds.txt", k.seed, strings.Join(k.open, ","))
	}
	return true
}

// keptSeeds reads testdata/seeds.txt: a seed per line, optionally followed
// by a -drop spec and by open=CLASSES; '#' starts a comment.
func keptSeeds() ([]keptSeed, error) {
	b, err := os.ReadFile("testdata/seeds.txt")
	if err != nil {
		return nil, err
	}
	var out []keptSeed
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		s, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("testdata/seeds.txt:%d: %v", i+1, err)
		}
		k := keptSeed{seed: s}
		for _, field := range f[1:] {
			if classes, ok := strings.CutPrefix(field, "open="); ok {
				k.open = strings.Split(classes, ",")
				continue
			}
			if k.drop, err = ParseDrop(field); err != nil {
				return nil, fmt.Errorf("testdata/seeds.txt:%d: %v", i+1, err)
			}
		}
		out = append(out, k)
	}
	return out, nil
}

var (
	flagSeeds = flag.Int("seeds", 0, "run this many fresh seeds")
	flagStart = flag.Uint64("start", 1, "first fresh seed")
)

var flagPower = flag.String("power", "", "find these defect classes (e.g. 1,2,3,4,6,9,10) from -start on, and print when each was first found")

// TestSimPower runs fresh seeds until every defect class of -power has been
// found, and prints, for each, the first seed, how many seeds it took and
// how long (the table of docs/reliability.md).
func TestSimPower(t *testing.T) {
	if *flagPower == "" {
		t.Skip("no -power")
	}
	want := map[string]bool{}
	for _, d := range strings.Split(*flagPower, ",") {
		want[d] = true
	}
	start := time.Now()
	max := *flagSeeds
	if max == 0 {
		max = 100000
	}
	for i := 0; i < max && len(want) > 0; i++ {
		s := *flagStart + uint64(i)
		res := runOne(t, NewPlan(s), Options{Strict: *flagStrict})
		for _, v := range res.Violations {
			if want[v.Defect] {
				delete(want, v.Defect)
				fmt.Printf("defect %s: seed %d, %d seeds, %v: %s\n", v.Defect, s, i+1, time.Since(start).Round(time.Millisecond), v)
			}
		}
	}
	for d := range want {
		fmt.Printf("defect %s: not found in %d seeds\n", d, max)
	}
}

// TestSimDeterminism runs seeds twice: the same seed must do the same
// things (the same trace, whatever order goroutines recorded it in) and find
// the same violations.
func TestSimDeterminism(t *testing.T) {
	n := 8
	if *flagSeeds > 0 {
		n = *flagSeeds
	}
	for s := *flagStart; s < *flagStart+uint64(n); s++ {
		a := runOne(t, NewPlan(s), Options{})
		b := runOne(t, NewPlan(s), Options{})
		if a.Fingerprint != b.Fingerprint || len(a.Violations) != len(b.Violations) {
			t.Errorf("seed %d: two runs differ: fingerprints %x and %x, %d and %d violations", s, a.Fingerprint, b.Fingerprint, len(a.Violations), len(b.Violations))
		}
	}
}
