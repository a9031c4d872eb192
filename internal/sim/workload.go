package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratacache/strata/core"
)

// The workload: each operation of the plan runs on its own goroutine, on the
// node's current incarnation, against the source of truth (db: a version
// per key). Readers' factories read the source, possibly slowly; writers bump
// the source, then tell the cache (Set, Remove, Expire, a tag, Clear) on their
// node, holding the keys they change for the whole time, as a service's
// database transaction would order its writes.

type opCtxKey struct{}

// opOf returns the operation whose context ctx is (or derives from).
func opOf(ctx context.Context) *opRec {
	op, _ := ctx.Value(opCtxKey{}).(*opRec)
	return op
}

var errFactory = errors.New("sim: the source failed")

func (w *world) runOp(spec *OpSpec) {
	defer w.opsWG.Done()
	inc := w.current(spec.Node)
	op := &opRec{spec: spec, inc: inc, start: w.now()}
	w.mu.Lock()
	w.rec.ops = append(w.rec.ops, op)
	w.mu.Unlock()
	if inc == nil {
		op.skipped = true
		w.tracef(nil, "", "op#%d %s on n%d skipped: the node is down", spec.ID, spec.Kind, spec.Node)
		return
	}
	if spec.Kind.isWrite() {
		w.write(op)
		return
	}
	ctx := context.WithValue(context.Background(), opCtxKey{}, op)
	if spec.CtxTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.CtxTimeout)
		defer cancel()
	}
	w.tracef(inc, strings.Join(spec.Keys, ","), "op#%d %s %s%s", spec.ID, spec.Kind, strings.Join(spec.Keys, ","), w.describeOpts(spec))
	func() {
		defer func() {
			if r := recover(); r != nil {
				op.panicked = r
			}
		}()
		c := inc.cache
		opts := w.entryOptions(spec)
		switch spec.Kind {
		case OpGetOrSet, OpConverge:
			var v Val
			v, op.err = core.GetOrSet(ctx, c, spec.Keys[0], w.factory(inc), opts...)
			if op.err == nil {
				op.vals = map[string]Val{spec.Keys[0]: v}
			}
		case OpGet:
			if spec.Keys[0] == w.cfg.OtherKey {
				_, op.found, op.err = core.Get[Val](ctx, c, spec.Keys[0], opts...)
				break
			}
			var v Val
			v, op.found, op.err = core.Get[Val](ctx, c, spec.Keys[0], opts...)
			if op.err == nil && op.found {
				op.vals = map[string]Val{spec.Keys[0]: v}
			}
		case OpGetOrSetOther:
			op.other, op.err = core.GetOrSet(ctx, c, spec.Keys[0], w.otherFactory(inc), opts...)
		case OpGetOrSetMany:
			var m map[string]Val
			m, op.err = core.GetOrSetMany(ctx, c, spec.Keys, w.manyFactory(inc), opts...)
			op.vals = m
		}
	}()
	w.mu.Lock()
	op.end, op.done = w.now(), true
	op.atClose = inc.closeAt >= 0 && op.end >= inc.closeAt
	w.mu.Unlock()
	if op.atClose {
		// What a call waiting as its cache closes gets depends on which
		// of two events of one instant its select sees first.
		w.tracef(inc, strings.Join(spec.Keys, ","), "op#%d returns as its cache closes", spec.ID)
		return
	}
	w.tracef(inc, strings.Join(spec.Keys, ","), "op#%d returns %s", spec.ID, w.describeResult(op))
}

// entryOptions are the per-call options of spec.
func (w *world) entryOptions(spec *OpSpec) []core.EntryOption {
	var opts []core.EntryOption
	if spec.FailSafe {
		opts = append(opts, core.WithFailSafe(time.Hour, max(spec.Throttle, time.Millisecond)))
	}
	if spec.Soft > 0 || spec.Hard > 0 {
		opts = append(opts, core.WithFactoryTimeouts(spec.Soft, spec.Hard))
	}
	if spec.L2Soft > 0 || spec.L2Hard > 0 {
		opts = append(opts, core.WithL2Timeouts(spec.L2Soft, spec.L2Hard))
	}
	if spec.Eager > 0 {
		opts = append(opts, core.WithEagerRefresh(spec.Eager))
	}
	if tags := w.tagsOf(spec); len(tags) > 0 {
		opts = append(opts, core.WithTags(tags...))
	}
	if spec.L1Duration > 0 {
		opts = append(opts, core.WithL1Duration(spec.L1Duration))
	}
	if spec.NoBgCompletion {
		opts = append(opts, core.WithBackgroundFactoryCompletion(false))
	}
	if spec.LockTimeout > 0 {
		opts = append(opts, core.WithLockTimeout(spec.LockTimeout))
	}
	if spec.AllowStale {
		opts = append(opts, core.WithAllowStaleOnRead())
	}
	if spec.BgL2 {
		opts = append(opts, core.WithBackgroundL2Writes())
	}
	if spec.BgBP {
		opts = append(opts, core.WithBackgroundBackplane())
	}
	return opts
}

// tagsOf returns the tags an operation's entries get: the key's tags (for
// several keys, the tags they all have).
func (w *world) tagsOf(spec *OpSpec) []string {
	if !spec.WithTags || len(spec.Keys) == 0 {
		return nil
	}
	var tags []string
	for i, k := range spec.Keys {
		kt := w.cfg.KeyTags[k]
		if i == 0 {
			tags = slices.Clone(kt)
			continue
		}
		tags = slices.DeleteFunc(tags, func(t string) bool { return !slices.Contains(kt, t) })
	}
	return tags
}

func (w *world) describeOpts(s *OpSpec) string {
	var p []string
	if s.FailSafe {
		p = append(p, "failsafe")
	}
	if s.Soft > 0 {
		p = append(p, "soft="+s.Soft.String())
	}
	if s.Hard > 0 {
		p = append(p, "hard="+s.Hard.String())
	}
	if s.L2Hard > 0 {
		p = append(p, fmt.Sprintf("l2=%v/%v", s.L2Soft, s.L2Hard))
	}
	if s.Eager > 0 {
		p = append(p, fmt.Sprintf("eager=%.2f", s.Eager))
	}
	if t := w.tagsOf(s); len(t) > 0 {
		p = append(p, "tags="+strings.Join(t, "+"))
	}
	if s.L1Duration > 0 {
		p = append(p, "l1="+s.L1Duration.String())
	}
	if s.NoBgCompletion {
		p = append(p, "no-bg-completion")
	}
	if s.LockTimeout > 0 {
		p = append(p, "lock="+s.LockTimeout.String())
	}
	if s.AllowStale {
		p = append(p, "allow-stale")
	}
	if s.BgL2 {
		p = append(p, "bg-l2")
	}
	if s.BgBP {
		p = append(p, "bg-backplane")
	}
	if s.CtxTimeout > 0 {
		p = append(p, "ctx="+s.CtxTimeout.String())
	}
	if len(p) == 0 {
		return ""
	}
	return " [" + strings.Join(p, " ") + "]"
}

func (w *world) describeResult(op *opRec) string {
	var parts []string
	if op.panicked != nil {
		return fmt.Sprintf("PANIC %v", op.panicked)
	}
	for _, k := range sortedKeys(op.vals) {
		parts = append(parts, op.vals[k].String())
	}
	if op.other != "" {
		parts = append(parts, op.other)
	}
	if op.spec.Kind == OpGet && !op.found && op.err == nil {
		parts = append(parts, "not found")
	}
	switch {
	case op.err != nil && op.atClose &&
		(errors.Is(op.err, core.ErrClosed) || errors.Is(op.err, context.Canceled)):
		// At Close, a waiting call sees the cache close and its run's
		// context cancelled at one instant: either may win the select.
		parts = append(parts, "error: closed")
	case op.err != nil:
		parts = append(parts, "error: "+op.err.Error())
	}
	s := strings.Join(parts, ", ")
	switch {
	case op.fastHit:
		s += " (L1 hit, fast path)"
	case op.observed && (op.info.Source != core.SourceNone || op.info.Stale || op.info.FailSafe):
		s += " (" + op.info.Source.String()
		if op.info.Stale {
			s += ", stale"
		}
		if op.info.FailSafe {
			s += ", fail-safe"
		}
		s += ")"
	}
	return s
}

// factoryMode is how one factory run behaves.
type factoryMode uint8

const (
	factoryOK factoryMode = iota
	factoryFails
	factoryPanics
	factorySlow
)

// plan draws a factory run's length, the instant it reads the source
// within it, and how it ends.
func (w *world) factoryPlan(inc *incarnation, what string, start time.Duration) (total, readAt time.Duration, mode factoryMode) {
	h := newHasher(w.seed, "factory")
	h.str(inc.label)
	h.str(what)
	h.i64(int64(start))
	d := h.draw()
	total = d.dur(time.Microsecond, w.cfg.FactoryTime)
	if start < w.cfg.ChaosEnd {
		switch x := d.float(); {
		case x < w.cfg.FactoryErr:
			mode = factoryFails
		case x < w.cfg.FactoryErr+w.cfg.FactoryPanic:
			mode = factoryPanics
		case x < w.cfg.FactoryErr+w.cfg.FactoryPanic+w.cfg.FactorySlow:
			mode = factorySlow
			total = d.dur(2*w.cfg.Bound, 4*w.cfg.Bound)
		}
	}
	readAt = time.Duration(d.float() * float64(total))
	return total, readAt, mode
}

// sleepCtx waits d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// factory is the GetOrSet factory of a node: it reads the source.
func (w *world) factory(inc *incarnation) core.Factory[Val] {
	return func(ctx context.Context, fc *core.FactoryContext[Val]) (Val, error) {
		start := w.now()
		total, readAt, mode := w.factoryPlan(inc, fc.Key, start)
		fr := &factoryRec{inc: inc, op: opOf(ctx), key: fc.Key, start: start, read: -1}
		w.mu.Lock()
		w.rec.factories = append(w.rec.factories, fr)
		w.mu.Unlock()
		w.tracef(inc, fc.Key, "factory %s starts (%v)", fc.Key, total)
		end := func(outcome string) {
			w.mu.Lock()
			fr.end, fr.outcome = w.now(), outcome
			w.mu.Unlock()
			w.tracef(inc, fc.Key, "factory %s ends: %s", fc.Key, outcome)
		}
		if err := sleepCtx(ctx, readAt); err != nil {
			end("cancelled")
			return Val{}, err
		}
		v := w.readSource(inc, fc.Key, start, fc.Options.Tags)
		w.mu.Lock()
		fr.read = v.V
		w.mu.Unlock()
		if err := sleepCtx(ctx, total-readAt); err != nil {
			end("cancelled")
			return Val{}, err
		}
		switch mode {
		case factoryFails:
			end("error")
			return Val{}, errFactory
		case factoryPanics:
			end("panic")
			panic("sim: the source panicked")
		}
		end(v.String())
		return v, nil
	}
}

// readSource reads key's version now, as a factory that started at start.
func (w *world) readSource(inc *incarnation, key string, start time.Duration, tags []string) Val {
	w.mu.Lock()
	ver := w.db[key]
	w.mu.Unlock()
	return Val{K: key, V: ver, N: inc.node, I: inc.n, At: int64(start), Tags: slices.Clone(tags), UB: w.versionBound(start)}
}

// manyFactory is the GetOrSetMany factory of a node.
func (w *world) manyFactory(inc *incarnation) core.ManyFactory[Val] {
	return func(ctx context.Context, keys []string) (map[string]Val, error) {
		start := w.now()
		what := strings.Join(keys, ",")
		total, readAt, mode := w.factoryPlan(inc, what, start)
		frs := make([]*factoryRec, len(keys))
		w.mu.Lock()
		for i, k := range keys {
			frs[i] = &factoryRec{inc: inc, op: opOf(ctx), key: k, start: start, read: -1}
			w.rec.factories = append(w.rec.factories, frs[i])
		}
		w.mu.Unlock()
		w.tracef(inc, what, "batch factory %s starts (%v)", what, total)
		end := func(outcome string) {
			w.mu.Lock()
			for _, fr := range frs {
				fr.end, fr.outcome = w.now(), outcome
			}
			w.mu.Unlock()
			w.tracef(inc, what, "batch factory %s ends: %s", what, outcome)
		}
		if err := sleepCtx(ctx, readAt); err != nil {
			end("cancelled")
			return nil, err
		}
		out := make(map[string]Val, len(keys))
		// GetOrSetMany gives every key the call's options: its tags are
		// the tags all its keys share.
		var tags []string
		if op := opOf(ctx); op != nil {
			tags = w.tagsOf(op.spec)
		}
		for i, k := range keys {
			if !slices.Contains(w.cfg.Keys, k) {
				continue // the other-type key: no value
			}
			v := w.readSource(inc, k, start, tags)
			w.mu.Lock()
			frs[i].read = v.V
			w.mu.Unlock()
			out[k] = v
		}
		if err := sleepCtx(ctx, total-readAt); err != nil {
			end("cancelled")
			return nil, err
		}
		switch mode {
		case factoryFails:
			end("error")
			return nil, errFactory
		case factoryPanics:
			end("panic")
			panic("sim: the source panicked")
		}
		end(fmt.Sprintf("%d values", len(out)))
		return out, nil
	}
}

// otherFactory produces the other-type key's value.
func (w *world) otherFactory(inc *incarnation) core.Factory[string] {
	return func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		return fmt.Sprintf("%s from %s@%s", fc.Key, inc.label, fmtDur(w.now())), nil
	}
}

// opTrace is the traceparent a write's messages carry.
func opTrace(id int) string { return "op" + strconv.Itoa(id) }

// versionBound bounds from above any version a node can give at at:
// versions form a hybrid logical clock (a node's stamps follow the versions
// it has seen from others), so they stay below the highest any node's clock
// has read by then.
func (w *world) versionBound(at time.Duration) int64 {
	var m int64
	for _, c := range w.clocks {
		m = max(m, c.maxRead(at))
	}
	return m + int64(time.Microsecond)
}

// write changes the source, then tells the cache.
func (w *world) write(op *opRec) {
	spec := op.spec
	inc := op.inc
	var keys []string
	subject := ""
	switch spec.Kind {
	case OpSet, OpRemove, OpExpire:
		keys = spec.Keys
		subject = spec.Keys[0]
	case OpRemoveByTag, OpExpireByTag:
		subject = spec.Tag
		for _, k := range w.cfg.Keys {
			if slices.Contains(w.cfg.KeyTags[k], spec.Tag) {
				keys = append(keys, k)
			}
		}
	default:
		keys = w.cfg.Keys
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.keyLocks[k] <- struct{}{}
	}
	defer func() {
		for _, k := range keys {
			<-w.keyLocks[k]
		}
	}()
	// The source's commit takes a moment of its own: writers that waited
	// for the same keys do not all go on at the instant they are freed.
	h := newHasher(w.seed, "commit")
	h.u64(uint64(spec.ID))
	time.Sleep(h.draw().dur(time.Microsecond, 50*time.Microsecond))
	now := w.now()
	w.mu.Lock()
	if w.cur[spec.Node] != inc {
		w.mu.Unlock()
		op.skipped = true
		w.tracef(nil, "", "op#%d %s on %s skipped: the node went down", spec.ID, spec.Kind, inc.label)
		return
	}
	op.start = now // the call, once the keys are held
	ch := &changeRec{id: len(w.rec.changes), op: op, kind: spec.Kind, inc: inc, subject: subject,
		vers: map[string]int{}, call: now}
	for _, k := range keys {
		w.db[k]++
		ch.vers[k] = w.db[k]
	}
	ch.lb = w.clocks[inc.node].read(now)
	ch.ub = w.versionBound(now)
	w.rec.changes = append(w.rec.changes, ch)
	w.mu.Unlock()
	w.tracef(inc, subject, "op#%d %s%s", spec.ID, ch, w.describeOpts(spec))
	// The change's messages carry the operation in their traceparent,
	// so that the checker finds its version (its stamp) in them.
	ctx := context.WithValue(context.Background(), opCtxKey{}, op)
	ctx = context.WithValue(ctx, core.TraceParentKey{}, opTrace(spec.ID))
	c := inc.cache
	opts := w.entryOptions(spec)
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				op.panicked = r
			}
		}()
		switch spec.Kind {
		case OpSet:
			k := spec.Keys[0]
			v := Val{K: k, V: ch.vers[k], N: inc.node, I: inc.n, At: int64(now), Set: true, Tags: w.tagsOf(spec), UB: ch.ub}
			if spec.FailSafe {
				opts = append(opts, core.WithFailSafe(time.Hour, w.cfg.Bound))
			}
			err = core.Set(ctx, c, k, v, opts...)
		case OpRemove:
			err = c.Remove(ctx, subject, opts...)
		case OpExpire:
			err = c.Expire(ctx, subject, opts...)
		case OpRemoveByTag:
			err = c.RemoveByTag(ctx, subject, opts...)
		case OpExpireByTag:
			err = c.ExpireByTag(ctx, subject, opts...)
		case OpClearRemove:
			err = c.Clear(ctx, false, opts...)
		case OpClearExpire:
			err = c.Clear(ctx, true, opts...)
		}
	}()
	w.mu.Lock()
	op.err = err
	op.end, op.done = w.now(), true
	ch.ret = op.end
	ch.failed = err != nil || op.panicked != nil
	ch.done = true
	w.mu.Unlock()
	res := "returns"
	if err != nil {
		res = "returns error: " + err.Error()
	}
	w.tracef(inc, subject, "op#%d %s", spec.ID, res)
}
