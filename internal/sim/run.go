package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Options tune a run's checker.
type Options struct {
	// Strict also flags a node that keeps an old value after losing a
	// message no gap could reveal, because it had heard nothing from the
	// sender since it (re)subscribed (see Report's first-contact note).
	Strict bool
}

// Result is what one run found.
type Result struct {
	Plan       *Plan
	Violations []Violation
	// Fingerprint identifies what the run did: two runs of one plan have
	// the same (the same seed, the same run).
	Fingerprint uint64
	Ops         int
	Messages    int
	Virtual     time.Duration
	trace       []traceEv
	incs        []*incarnation
}

// Failed reports whether the run broke a promise.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Run runs p in the calling goroutine's synctest bubble (synctest.Test) and
// checks it.
func Run(p *Plan, o Options) *Result {
	w := newWorld(p)
	w.drive()
	left := w.shutdown()
	res := &Result{Plan: p, Violations: w.check(o.Strict, left), Fingerprint: w.rec.fingerprint(),
		Ops: len(w.rec.ops), Messages: len(w.rec.deliveries), Virtual: w.now(), trace: w.rec.sortedTrace(), incs: w.rec.incs}
	_ = w.store.Close()
	return res
}

// Report prints a failed run: its seed, how to replay it, the plan, the
// violations, and the trace of the events that led to the first one.
func (r *Result) Report(replay string) string {
	var b strings.Builder
	v := r.Violations[0]
	fmt.Fprintf(&b, "seed %d: %d violation(s); the first: %s\n\n", r.Plan.Seed, len(r.Violations), v.Kind)
	fmt.Fprintf(&b, "replay: %s\n\n", replay)
	b.WriteString(r.Plan.Summary())
	b.WriteString("\n\nviolations:\n")
	for i, x := range r.Violations {
		if i == 10 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(r.Violations)-10)
			break
		}
		fmt.Fprintf(&b, "  %s\n", x)
	}
	fmt.Fprintf(&b, "\ntrace of %s, nodes %s, until %s (times are virtual, since the start of the run):\n",
		strings.Join(v.Keys, ","), strings.Join(r.involved(v), ","), fmtDur(max(v.At, v.Until)))
	for _, e := range r.relevant(v, 160) {
		b.WriteString("  ")
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// involved lists the nodes a violation is about.
func (r *Result) involved(v Violation) []string {
	nodes := slices.Clone(v.nodes)
	if v.Node != "" && v.Node != "--" && !slices.Contains(nodes, v.Node) {
		nodes = append(nodes, v.Node)
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}

// relevant returns the last n trace events up to v (and a little after)
// that are about v's keys, or about its nodes' connection and lifecycle.
func (r *Result) relevant(v Violation, n int) []traceEv {
	nodes := r.involved(v)
	until := max(v.At, v.Until) + time.Millisecond
	if v.Kind == "quiescence" || v.Kind == "goroutine leak" || v.Kind == "L2 lost update" {
		until = forever
	}
	var out []traceEv
	for _, e := range r.trace {
		if e.T > until {
			break
		}
		keyMatch := e.Key != "" && (slices.Contains(v.Keys, e.Key) || strings.Contains(e.Key, ",") && anyIn(strings.Split(e.Key, ","), v.Keys))
		nodeMatch := len(nodes) == 0 || slices.Contains(nodes, e.Node) || e.Node == ""
		general := e.Key == "" && nodeMatch
		if keyMatch || general || len(v.Keys) == 0 && nodeMatch {
			out = append(out, e)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func anyIn(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// Trace returns the whole trace.
func (r *Result) Trace() string {
	var b strings.Builder
	for _, e := range r.trace {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}
