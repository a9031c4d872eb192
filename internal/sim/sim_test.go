package sim

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"testing/synctest"
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
