package sim

import (
	"slices"
)

// Shrink looks for a smaller plan that still breaks the promise res's first
// violation broke (same kind, same defect class): without the operations and
// faults after it, without faults, without whole nodes, without operations
// (delta debugging), each try a run of its own, at most budget runs. run runs
// a plan in a bubble of its own. It returns the smallest failing result found
// (res itself if none is smaller) and how many runs it made.
func Shrink(res *Result, budget int, run func(*Plan) *Result) (*Result, int) {
	target := res.Violations[0]
	full := NewPlan(res.Plan.Seed)
	best := res
	drop := res.Plan.Dropped
	runs := 0
	try := func(d Drop) bool {
		if runs >= budget {
			return false
		}
		runs++
		r := run(full.Apply(d))
		for _, v := range r.Violations {
			if v.Kind == target.Kind && v.Defect == target.Defect {
				best, drop = r, d
				return true
			}
		}
		return false
	}
	with := func(d Drop, ops, faults, nodes []int) Drop {
		return Drop{Ops: merge(d.Ops, ops), Faults: merge(d.Faults, faults), Nodes: merge(d.Nodes, nodes)}
	}
	live := func() *Plan { return best.Plan }

	// What happened after the violation cannot have caused it (except for
	// the properties checked at the end of the run).
	switch target.Kind {
	case "quiescence", "convergence", "L2 lost update", "goroutine leak":
	default:
		cut := max(target.At, target.Until)
		var ops, faults []int
		for _, o := range live().Ops {
			if o.At > cut {
				ops = append(ops, o.ID)
			}
		}
		for _, f := range live().Faults {
			if f.Start > cut {
				faults = append(faults, f.ID)
			}
		}
		if len(ops)+len(faults) > 0 {
			try(with(drop, ops, faults, nil))
		}
	}
	// Faults: all at once, then one by one.
	if fs := ids(live().Faults); len(fs) > 0 && !try(with(drop, nil, fs, nil)) {
		for _, f := range fs {
			try(with(drop, nil, []int{f}, nil))
		}
	}
	// Nodes.
	for n := range live().Cfg.Nodes {
		if !slices.Contains(drop.Nodes, n) && live().Cfg.Nodes-len(drop.Nodes) > 1 {
			try(with(drop, nil, nil, []int{n}))
		}
	}
	// Operations: delta debugging, chunks halving down to one.
	for chunks := 2; ; {
		ops := opIDs(live().Ops)
		if len(ops) == 0 || runs >= budget {
			break
		}
		size := max(1, len(ops)/chunks)
		removed := false
		for i := 0; i < len(ops); i += size {
			if try(with(drop, ops[i:min(i+size, len(ops))], nil, nil)) {
				removed = true
				break
			}
		}
		switch {
		case removed:
			chunks = max(chunks-1, 2)
		case size == 1:
			return best, runs
		default:
			chunks = min(2*chunks, len(ops))
		}
	}
	return best, runs
}

func ids(fs []FaultSpec) []int {
	out := make([]int, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

func opIDs(ops []OpSpec) []int {
	out := make([]int, len(ops))
	for i, o := range ops {
		out[i] = o.ID
	}
	return out
}

func merge(a, b []int) []int {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
