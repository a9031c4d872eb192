package coherence

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is what a run found.
type Report struct {
	Duration time.Duration
	// Ops counts the workload's operations (recovery probes excluded):
	// Reads (GetOrSet and Get), Sets, Removes, TagRemovals (RemoveByTag
	// after updating the group's keys). Gets counts the reads that were a
	// Get, GetMisses those of them that found nothing.
	Ops, Reads, Sets, Removes, TagRemovals int64
	Gets, GetMisses                        int64
	// FactoryCalls counts the calls of the factories (recovery probes'
	// included).
	FactoryCalls int64
	// Errors counts caller-visible errors; FirstErrors holds the first few.
	Errors      int64
	FirstErrors []string
	// Panics counts panics recovered in the workers.
	Panics int64
	// Violations counts reads that broke the staleness bound (a value
	// served longer than Bound+Slack after a change every node could hear
	// of, or the reader stopped hearing); FirstViolations holds the first
	// few.
	Violations      int64
	FirstViolations []Violation
	// Worst is how long after its limit the most belated violating read
	// started (0 without violations).
	Worst time.Duration
	// Outdated counts, with Config.Healthy, reads that returned a version
	// older than a change that had returned before they started: on the
	// node that made it (OutdatedOwn of them), or more than
	// Config.Propagation before, on another node. FirstOutdated holds the
	// first few, WorstOutdated how long after its limit the most belated
	// one started.
	Outdated, OutdatedOwn int64
	FirstOutdated         []Violation
	WorstOutdated         time.Duration
	// Late counts reads of a value that a cut-off node replaced, served
	// longer than RecoveryDelay+Slack after that node was back (its
	// change arrived late: the convergence promise, not the bound);
	// FirstLate holds the first few.
	Late      int64
	FirstLate []Violation
	// ReadP50, ReadP99, WriteP99 and P99 are latency percentiles (P99 of
	// all operations).
	ReadP50, ReadP99, WriteP99, P99, Max time.Duration
	// Faults has one entry per fault, in order.
	Faults []FaultReport
}

// FaultReport is one fault's outcome.
type FaultReport struct {
	Name string
	// Start is the fault's start, relative to the run's start; Length its
	// duration.
	Start, Length time.Duration
	// Recovery is the time from the fault's end until every node served
	// the latest value of every key; Converged is false if that never
	// happened within Config.RecoveryTimeout.
	Recovery  time.Duration
	Converged bool
	// LastLag describes the last read that was not yet current while the
	// nodes converged ("" if the first round was).
	LastLag string
	// Violations counts violating reads that started between this fault's
	// start and the next fault's.
	Violations int64
}

// Stop stops the workers and returns the report.
func (c *Checker) Stop() Report {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rep
	r.FirstErrors = slices.Clone(r.FirstErrors)
	r.FirstViolations = slices.Clone(r.FirstViolations)
	r.FirstLate = slices.Clone(r.FirstLate)
	r.FirstOutdated = slices.Clone(r.FirstOutdated)
	r.Duration = time.Since(c.begun)
	r.Panics = c.panics.Load()
	r.FactoryCalls = c.factoryCalls.Load()
	var reads, writes []time.Duration
	for _, st := range c.stats {
		reads = append(reads, st.reads...)
		writes = append(writes, st.writes...)
		r.Gets += st.gets
		r.GetMisses += st.getMisses
		r.Sets += st.sets
		r.Removes += st.removes
		r.TagRemovals += st.tagOps
	}
	r.Reads = int64(len(reads))
	r.Ops = r.Reads + int64(len(writes))
	all := append(slices.Clone(reads), writes...)
	slices.Sort(reads)
	slices.Sort(writes)
	slices.Sort(all)
	r.ReadP50, r.ReadP99 = percentile(reads, 0.50), percentile(reads, 0.99)
	r.WriteP99, r.P99 = percentile(writes, 0.99), percentile(all, 0.99)
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	for _, f := range c.faults {
		r.Faults = append(r.Faults, FaultReport{Name: f.name, Start: f.start.Sub(c.begun), Length: f.end.Sub(f.start),
			Recovery: f.recovery, Converged: f.converged, LastLag: f.lag, Violations: f.violations})
	}
	return r
}

// percentile returns the p-quantile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// String formats the report for people: totals, latencies, one line per
// fault, and the first errors and violations.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %d ops (%d reads, %d sets, %d removes, %d tag removals), %.0f ops/s\n",
		r.Duration.Round(time.Millisecond), r.Ops, r.Reads, r.Sets, r.Removes, r.TagRemovals,
		float64(r.Ops)/max(r.Duration.Seconds(), 1e-9))
	if r.Gets > 0 {
		fmt.Fprintf(&b, "reads: %d GetOrSet, %d Get (%d misses)\n", r.Reads-r.Gets, r.Gets, r.GetMisses)
	}
	fmt.Fprintf(&b, "factory calls %d\n", r.FactoryCalls)
	fmt.Fprintf(&b, "violations %d, late reads %d, caller-visible errors %d, panics %d\n", r.Violations, r.Late, r.Errors, r.Panics)
	if r.Violations > 0 {
		fmt.Fprintf(&b, "worst violation: read %v after its limit\n", r.Worst.Round(time.Millisecond))
	}
	if r.Outdated > 0 {
		fmt.Fprintf(&b, "outdated reads %d (%d on the node that made the change), worst %v after its limit\n",
			r.Outdated, r.OutdatedOwn, r.WorstOutdated.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "latency: read p50 %v p99 %v, write p99 %v, all p99 %v, max %v\n",
		r.ReadP50.Round(time.Microsecond), r.ReadP99.Round(time.Microsecond), r.WriteP99.Round(time.Microsecond),
		r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	for _, f := range r.Faults {
		rec := "did not converge"
		if f.Converged {
			rec = "recovered in " + f.Recovery.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "fault %-28s at %7v for %7v: %s, %d violations\n", f.Name,
			f.Start.Round(time.Millisecond), f.Length.Round(time.Millisecond), rec, f.Violations)
		if f.LastLag != "" {
			fmt.Fprintf(&b, "  last lagging read: %s\n", f.LastLag)
		}
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	for _, v := range r.FirstViolations {
		fmt.Fprintf(&b, "violation: %s\n", v)
	}
	for _, v := range r.FirstLate {
		fmt.Fprintf(&b, "late: %s\n", v)
	}
	for _, v := range r.FirstOutdated {
		fmt.Fprintf(&b, "outdated: %s\n", v)
	}
	return b.String()
}
