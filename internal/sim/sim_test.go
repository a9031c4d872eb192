package sim

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var (
	flagSeed   = flag.Uint64("seed", 0, "replay this seed (with -drop: its shrunk plan)")
	flagDrop   = flag.String("drop", "", "what to drop from -seed's plan, as a failure prints it")
	flagTrace  = flag.Bool("fulltrace", false, "print -seed's whole trace")
	flagStrict = flag.Bool("strict", false, "also flag first-contact losses (Options.Strict)")
)

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

func TestSimOne(t *testing.T) {
	if *flagSeed == 0 {
		t.Skip("no -seed")
	}
	p := NewPlan(*flagSeed)
	d, err := ParseDrop(*flagDrop)
	if err != nil {
		t.Fatal(err)
	}
	p = p.Apply(d)
	res := runOne(t, p, Options{Strict: *flagStrict})
	if *flagTrace {
		fmt.Fprintln(os.Stderr, p.Summary())
		fmt.Fprint(os.Stderr, res.Trace())
	}
	t.Logf("seed %d: %d ops, %d deliveries, %v virtual, fingerprint %x", p.Seed, res.Ops, res.Messages, res.Virtual, res.Fingerprint)
	if res.Failed() {
		t.Fatal(res.Report(fmt.Sprintf("go test ./internal/sim -run TestSimOne -seed=%d -v", p.Seed)))
	}
}

var (
	flagSeeds = flag.Int("seeds", 0, "run this many fresh seeds")
	flagStart = flag.Uint64("start", 1, "first fresh seed")
)

// TestSimSurvey runs -seeds seeds and prints a line per failing one.
func TestSimSurvey(t *testing.T) {
	if *flagSeeds == 0 {
		t.Skip("no -seeds")
	}
	byKind := map[string]int{}
	for s := *flagStart; s < *flagStart+uint64(*flagSeeds); s++ {
		p := NewPlan(s)
		res := runOne(t, p, Options{Strict: *flagStrict})
		if res.Failed() {
			v := res.Violations[0]
			byKind[v.Kind+"/"+v.Defect]++
			fmt.Printf("seed %d: %d violations; first %s\n", s, len(res.Violations), v)
		}
	}
	fmt.Println(byKind)
}

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
