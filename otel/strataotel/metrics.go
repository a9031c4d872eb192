package strataotel

import (
	"context"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/stratacache/strata/core"
)

// Metric instrument names.
const (
	MetricOperations        = "strata.cache.operations"
	MetricOperationDuration = "strata.cache.operation.duration"
	MetricFactoryDuration   = "strata.cache.factory.duration"
	MetricL2Duration        = "strata.cache.l2.duration"
	MetricPublishDuration   = "strata.cache.backplane.publish.duration"
	MetricBackplaneLag      = "strata.cache.backplane.lag"
	MetricFailSafe          = "strata.cache.failsafe.activations"
	MetricFactoryErrors     = "strata.cache.factory.errors"
	MetricFactoryTimeouts   = "strata.cache.factory.timeouts"
	MetricLockTimeouts      = "strata.cache.lock.timeouts"
	MetricBreakerChanges    = "strata.cache.circuit_breaker.changes"
	MetricBreakerOpen       = "strata.cache.circuit_breaker.open"
	MetricEvictions         = "strata.cache.l1.evictions"
	MetricL2Errors          = "strata.cache.l2.errors"
	MetricBackplaneLosses   = "strata.cache.backplane.losses"
	MetricBackplaneCorrupt  = "strata.cache.backplane.corrupt"
	MetricBackplaneRejected = "strata.cache.backplane.rejected"
	MetricBackplaneBehind   = "strata.cache.backplane.behind"
)

// durationBuckets suit a cache: from 10 µs (an L1 hit inside a trace) to
// 10 s (a slow factory).
var durationBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Results of an operation, the values of strata.result.
const (
	resHit = iota
	resStaleHit
	resMiss
	resOK
	resError
	numResults
)

var resultNames = [numResults]string{"hit", "stale_hit", "miss", "ok", "error"}

const numOps = int(core.OpBackplaneReceive) + 1

type instruments struct {
	ops             metric.Int64ObservableCounter
	opDuration      metric.Float64Histogram
	factoryDuration metric.Float64Histogram
	l2Duration      metric.Float64Histogram
	publishDuration metric.Float64Histogram
	lag             metric.Float64Histogram
	failSafe        metric.Int64Counter
	factoryErrors   metric.Int64Counter
	factoryTimeouts metric.Int64Counter
	lockTimeouts    metric.Int64Counter
	breakerChanges  metric.Int64Counter
	breakerOpen     metric.Int64ObservableGauge
	evictions       metric.Int64Counter
	l2Errors        metric.Int64Counter
	losses          metric.Int64Counter
	bpCorrupt       metric.Int64Counter
	bpRejected      metric.Int64Counter
	bpBehind        metric.Int64Counter
}

var noopMeter = noop.NewMeterProvider().Meter(ScopeName)

func counter(m metric.Meter, name, desc, unit string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	if err != nil {
		otel.Handle(err)
	}
	if c == nil {
		c, _ = noopMeter.Int64Counter(name)
	}
	return c
}

func histogram(m metric.Meter, name, desc string) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	if h == nil {
		h, _ = noopMeter.Float64Histogram(name)
	}
	return h
}

// initMetrics makes the instruments and registers the callback of the
// observable ones.
func (o *Observer) initMetrics(m metric.Meter) {
	var err error
	i := &o.m
	i.ops, err = m.Int64ObservableCounter(MetricOperations, metric.WithUnit("{operation}"),
		metric.WithDescription("Cache operations, by operation and result (hit, stale_hit, miss, ok, error)."))
	if err != nil || i.ops == nil {
		otel.Handle(err)
		i.ops, _ = noopMeter.Int64ObservableCounter(MetricOperations)
	}
	i.breakerOpen, err = m.Int64ObservableGauge(MetricBreakerOpen, metric.WithUnit("1"),
		metric.WithDescription("1 while the circuit breaker of a component (l2, backplane) is open, else 0."))
	if err != nil || i.breakerOpen == nil {
		otel.Handle(err)
		i.breakerOpen, _ = noopMeter.Int64ObservableGauge(MetricBreakerOpen)
	}
	i.opDuration = histogram(m, MetricOperationDuration, "Duration of cache operations that were traced (L1 hits outside a sampled trace are counted, not timed).")
	i.factoryDuration = histogram(m, MetricFactoryDuration, "Duration of factory calls.")
	i.l2Duration = histogram(m, MetricL2Duration, "Duration of L2 calls, by operation (l2.get, l2.set, l2.delete) and result.")
	i.publishDuration = histogram(m, MetricPublishDuration, "Duration of backplane publishes.")
	i.lag = histogram(m, MetricBackplaneLag, "Time from a change on another node to its receipt here (includes clock skew between nodes; a factory result counts from the factory's start).")
	i.failSafe = counter(m, MetricFailSafe, "Stale values served by fail-safe instead of a failed or slow factory's result.", "{activation}")
	i.factoryErrors = counter(m, MetricFactoryErrors, "Factory calls that returned an error or panicked, by error.type.", "{error}")
	i.factoryTimeouts = counter(m, MetricFactoryTimeouts, "Callers that stopped waiting for a factory at a timeout, by strata.timeout (soft, hard).", "{timeout}")
	i.lockTimeouts = counter(m, MetricLockTimeouts, "Callers that stopped waiting for another caller's factory (lock timeout).", "{timeout}")
	i.breakerChanges = counter(m, MetricBreakerChanges, "Circuit breaker state changes, by component and new state.", "{change}")
	i.evictions = counter(m, MetricEvictions, "Entries L1 evicted to stay within its size bound.", "{entry}")
	i.l2Errors = counter(m, MetricL2Errors, "Failed L2 calls and corrupt L2 entries.", "{error}")
	i.losses = counter(m, MetricBackplaneLosses, "Times this node expired its L1 because it may have missed backplane messages, by strata.reason.", "{event}")
	i.bpCorrupt = counter(m, MetricBackplaneCorrupt, "Backplane messages dropped because they could not be decoded (garbage, truncated, another wire version).", "{message}")
	i.bpBehind = counter(m, MetricBackplaneBehind, "Times this node's subscription fell behind: its own backplane messages took longer than half the staleness bound to come back (it then re-reads entries older than the bound).", "{event}")
	i.bpRejected = counter(m, MetricBackplaneRejected, "Backplane messages dropped, with signing on, for a missing or bad signature: spoofing attempts or nodes with other keys.", "{message}")
	o.reg, err = m.RegisterCallback(o.observe, i.ops, i.breakerOpen)
	if err != nil {
		otel.Handle(err)
	}
}

// cacheState holds what the observer knows about one cache (by name): its
// operation counts and precomputed attribute sets, so that counting and
// recording allocate nothing.
type cacheState struct {
	name string
	// hits counts the L1 hits of GetOrSet that got no span (Hit), in
	// stripes on their own cache lines so that cores do not fight over one
	// counter.
	hits [hitStripes]hitStripe
	ops  [numOps][numResults]atomic.Int64
	// opAttrs[op][result] is {cache, operation, result}; rec the same as
	// a record option.
	opAttrs [numOps][numResults]attribute.Set
	rec     [numOps][numResults][]metric.RecordOption
	// cache is {cache} alone.
	cache    []metric.AddOption
	soft     []metric.AddOption
	hard     []metric.AddOption
	lagOpts  sync.Map // action -> []metric.RecordOption
	mu       sync.Mutex
	breakers map[string]bool // component -> open
}

const hitStripeBits = 4
const hitStripes = 1 << hitStripeBits

type hitStripe struct {
	_          [64]byte // away from the fields before
	hit, stale atomic.Int64
	_          [48]byte
}

// stripe picks the hit counter stripe of the calling goroutine from the
// address of its stack, so that each goroutine mostly writes its own
// stripe without reading any shared state.
// Goroutine stacks start at 2 KiB: the address shifted by 11 tells them
// apart, and a 64-bit finalizer mixes it.
func stripe() uintptr {
	var b byte
	h := uint64(uintptr(unsafe.Pointer(&b)) >> 11)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return uintptr(h & (hitStripes - 1))
}

func (st *cacheState) count(op core.Operation, r int) int64 {
	n := st.ops[op][r].Load()
	if op == core.OpGetOrSet && (r == resHit || r == resStaleHit) {
		for i := range st.hits {
			if r == resHit {
				n += st.hits[i].hit.Load()
			} else {
				n += st.hits[i].stale.Load()
			}
		}
	}
	return n
}

func newCacheState(name string) *cacheState {
	st := &cacheState{name: name, breakers: map[string]bool{}}
	cn := AttrCacheName.String(name)
	for op := 1; op < numOps; op++ {
		opName := AttrOperation.String(core.Operation(op).String())
		for r := range numResults {
			st.opAttrs[op][r] = attribute.NewSet(cn, opName, AttrResult.String(resultNames[r]))
			st.rec[op][r] = []metric.RecordOption{metric.WithAttributeSet(st.opAttrs[op][r])}
		}
	}
	st.cache = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(cn))}
	st.soft = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(cn, AttrTimeout.String("soft")))}
	st.hard = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(cn, AttrTimeout.String("hard")))}
	return st
}

func (st *cacheState) lagOptions(action string) []metric.RecordOption {
	if v, ok := st.lagOpts.Load(action); ok {
		return v.([]metric.RecordOption)
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		AttrCacheName.String(st.name), AttrBackplaneAction.String(action)))}
	st.lagOpts.Store(action, opts)
	return opts
}

// state returns the state of the cache named name, making it on first use.
func (o *Observer) state(name string) *cacheState {
	if st := o.last.Load(); st != nil && (unsafe.StringData(st.name) == unsafe.StringData(name) && len(st.name) == len(name) || st.name == name) {
		return st
	}
	v, ok := o.caches.Load(name)
	if !ok {
		v, _ = o.caches.LoadOrStore(name, newCacheState(name))
	}
	st := v.(*cacheState)
	o.last.Store(st)
	return st
}

// observe reports the observable instruments.
func (o *Observer) observe(_ context.Context, ob metric.Observer) error {
	o.caches.Range(func(_, v any) bool {
		st := v.(*cacheState)
		for op := 1; op < numOps; op++ {
			for r := range numResults {
				if n := st.count(core.Operation(op), r); n != 0 {
					ob.ObserveInt64(o.m.ops, n, metric.WithAttributeSet(st.opAttrs[op][r]))
				}
			}
		}
		st.mu.Lock()
		for comp, open := range st.breakers {
			var v int64
			if open {
				v = 1
			}
			ob.ObserveInt64(o.m.breakerOpen, v, metric.WithAttributes(AttrCacheName.String(st.name), AttrComponent.String(comp)))
		}
		st.mu.Unlock()
		return true
	})
	return nil
}

// result classifies a finished operation for strata.result.
func result(op *core.OpInfo) int {
	switch {
	case op.Err != nil:
		return resError
	case op.Op == core.OpGetOrSet || op.Op == core.OpGet || op.Op == core.OpL2Get:
		switch {
		case op.Hit && op.Stale, op.Stale && op.FailSafe:
			return resStaleHit
		case op.Hit:
			return resHit
		}
		return resMiss
	}
	return resOK
}

// record updates the metrics of a finished operation.
func (o *Observer) record(ctx context.Context, st *cacheState, op *core.OpInfo, seconds float64) {
	if int(op.Op) >= numOps || op.Op == 0 {
		return
	}
	r := result(op)
	switch op.Op {
	case core.OpFactory:
		o.m.factoryDuration.Record(ctx, seconds, st.rec[op.Op][r]...)
	case core.OpL2Get, core.OpL2Set, core.OpL2Delete:
		o.m.l2Duration.Record(ctx, seconds, st.rec[op.Op][r]...)
	case core.OpBackplanePublish:
		o.m.publishDuration.Record(ctx, seconds, st.rec[op.Op][r]...)
	case core.OpBackplaneReceive:
		if !op.ChangedAt.IsZero() && op.Action != "" {
			lag := max(op.Start.Sub(op.ChangedAt).Seconds(), 0)
			o.m.lag.Record(ctx, lag, st.lagOptions(op.Action)...)
		}
	default:
		st.ops[op.Op][r].Add(1)
		o.m.opDuration.Record(ctx, seconds, st.rec[op.Op][r]...)
	}
}
