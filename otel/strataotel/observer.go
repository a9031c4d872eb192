package strataotel

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratacache/strata/core"
)

// Observer traces and measures the caches it is registered with (see the
// package documentation). It implements core.Observer and core.HitObserver.
// One Observer may serve many caches; its methods are safe for concurrent
// use. It starts no goroutine.
type Observer struct {
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	keys     bool
	rootHits bool
	// last is the state of the cache last looked up (read on every hit).
	last   atomic.Pointer[cacheState]
	caches sync.Map // cache name -> *cacheState

	m   instruments
	reg metric.Registration

	_      [64]byte // keep the writes' mutex off the lines read by hits
	writes writes
}

var _ core.HitObserver = (*Observer)(nil)

// New returns an observer for core.Options.Observers. With no options it
// uses the global tracer provider, meter provider and propagator. Errors
// creating instruments go to otel.Handle; the observer then works without
// them.
func New(opts ...Option) *Observer {
	var cfg config
	for _, opt := range opts {
		opt.apply(&cfg)
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.prop == nil {
		cfg.prop = otel.GetTextMapPropagator()
	}
	o := &Observer{
		tracer:   cfg.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version)),
		prop:     cfg.prop,
		keys:     !cfg.noKeys,
		rootHits: cfg.rootHits,
		writes:   writes{m: map[writeKey][]writer{}},
	}
	o.initMetrics(cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version)))
	return o
}

// Shutdown unregisters the observer's metric callbacks (the operation
// counter and the circuit breaker gauge) from its meter provider. Call it
// when the caches it observes are closed and the observer is dropped; spans
// and the other instruments are not affected.
func (o *Observer) Shutdown() error {
	if o.reg == nil {
		return nil
	}
	return o.reg.Unregister()
}

var spanNames [numOps]string

func init() {
	for op := 1; op < numOps; op++ {
		spanNames[op] = "strata." + core.Operation(op).String()
	}
}

func spanName(op core.Operation) string {
	if int(op) < numOps && op != 0 {
		return spanNames[op]
	}
	return "strata.unknown"
}

// writesFor reports whether op may cause a backplane message: its span's
// traceparent then goes into the context for core to put in the message.
func writesFor(op *core.OpInfo) bool {
	switch op.Op {
	case core.OpSet, core.OpRemove, core.OpExpire, core.OpRemoveByTag, core.OpExpireByTag, core.OpClear,
		core.OpGetOrSet, core.OpFactory:
		return true
	}
	return false
}

// outerSpanKey holds, in a factory's context, the span of the operation
// around it: events reported after the factory span ended go there.
type outerSpanKey struct{}

// OpStart starts op's span and returns a context holding it. For operations
// whose change may be published, the context also holds the span's W3C
// traceparent under core.TraceParentKey.
func (o *Observer) OpStart(ctx context.Context, op *core.OpInfo) context.Context {
	var buf [4]attribute.KeyValue
	attrs := append(buf[:0], AttrCacheName.String(op.Cache))
	if o.keys && op.Key != "" && op.Op != core.OpClear {
		attrs = append(attrs, AttrKey.String(op.Key))
	}
	kind := trace.SpanKindInternal
	var links []trace.Link
	newRoot := false
	switch op.Op {
	case core.OpBackplanePublish:
		kind = trace.SpanKindProducer
		action := op.Action
		if sc := o.extract(op.TraceParent); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		} else if !trace.SpanContextFromContext(ctx).IsValid() {
			// Core publishes from its own goroutine: find the write that
			// is publishing (it waits for the publish unless
			// BackgroundBackplane is set).
			if w, ok := o.writes.latest(op.Cache, op.Key); ok {
				ctx = trace.ContextWithSpanContext(ctx, w.sc)
				if action == "" {
					action = w.action
				}
			}
		}
		if action != "" {
			attrs = append(attrs, AttrBackplaneAction.String(action))
		}
	case core.OpBackplaneReceive:
		kind, newRoot = trace.SpanKindConsumer, true
		if sc := o.extract(op.TraceParent); sc.IsValid() {
			links = []trace.Link{{SpanContext: sc}}
		}
		if op.Action != "" {
			attrs = append(attrs, AttrBackplaneAction.String(op.Action))
		}
	case core.OpL2Get, core.OpL2Set, core.OpL2Delete:
		kind = trace.SpanKindClient
	case core.OpFactory:
		if op.Background {
			newRoot = true
			attrs = append(attrs, AttrBackground.Bool(true))
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				links = []trace.Link{{SpanContext: sc}}
			}
		} else if outer := trace.SpanFromContext(ctx); outer.IsRecording() {
			ctx = context.WithValue(ctx, outerSpanKey{}, outer)
		}
	}
	opts := make([]trace.SpanStartOption, 0, 5)
	opts = append(opts, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	if !op.Start.IsZero() {
		opts = append(opts, trace.WithTimestamp(op.Start))
	}
	if newRoot {
		opts = append(opts, trace.WithNewRoot())
	}
	if links != nil {
		opts = append(opts, trace.WithLinks(links...))
	}
	ctx, span := o.tracer.Start(ctx, spanName(op.Op), opts...)
	if sc := span.SpanContext(); sc.IsValid() && (writesFor(op) || op.Op == core.OpBackplanePublish) {
		if tp := o.inject(ctx); tp != "" {
			ctx = context.WithValue(ctx, core.TraceParentKey{}, tp)
		}
		if op.Op != core.OpBackplanePublish {
			o.writes.add(op.Cache, op.Key, writer{sc: sc, action: actionOf(op.Op)})
		}
	}
	return ctx
}

// actionOf is the backplane action an operation publishes ("" when it
// cannot be told from the operation alone).
func actionOf(op core.Operation) string {
	switch op {
	case core.OpSet, core.OpGetOrSet, core.OpFactory:
		return "set"
	case core.OpRemove:
		return "remove"
	case core.OpExpire:
		return "expire"
	case core.OpRemoveByTag:
		return "remove_tag"
	case core.OpExpireByTag:
		return "expire_tag"
	}
	return ""
}

// OpEnd sets the outcome of op on its span, ends it, and records op's
// metrics.
func (o *Observer) OpEnd(ctx context.Context, op *core.OpInfo) {
	end := time.Now()
	span := trace.SpanFromContext(ctx)
	if writesFor(op) {
		o.writes.remove(op.Cache, op.Key, span.SpanContext())
	}
	if span.IsRecording() {
		var buf [6]attribute.KeyValue
		attrs := buf[:0]
		switch op.Op {
		case core.OpGetOrSet, core.OpGet:
			attrs = append(attrs, AttrHit.Bool(op.Hit), AttrStale.Bool(op.Stale), AttrFailSafe.Bool(op.FailSafe))
			if op.Source != core.SourceNone {
				attrs = append(attrs, AttrSource.String(op.Source.String()))
			}
			if op.EagerRefresh {
				attrs = append(attrs, AttrEagerRefresh.Bool(true))
			}
		case core.OpL2Get:
			attrs = append(attrs, AttrHit.Bool(op.Hit))
		}
		if op.Err != nil {
			et := ErrorType(op.Err)
			attrs = append(attrs, AttrErrorType.String(et))
			desc := et
			if o.keys {
				desc = op.Err.Error()
			}
			span.SetStatus(codes.Error, desc)
		}
		span.SetAttributes(attrs...)
	}
	span.End(trace.WithTimestamp(end))
	start := op.Start
	if start.IsZero() {
		start = end
	}
	o.record(ctx, o.state(op.Cache), op, end.Sub(start).Seconds())
}

// HitRecorder returns the recorder of the L1 hits of the cache named cache,
// bound to its counters. It implements core.HitObserver.
func (o *Observer) HitRecorder(cache string) core.HitRecorder {
	return &hitRecorder{rootHits: o.rootHits, st: o.state(cache)}
}

// hitRecorder counts the L1 hits of one cache that get no span.
type hitRecorder struct {
	rootHits bool
	st       *cacheState
}

// WantsHitOp reports whether an L1 hit in ctx gets a span: when ctx holds a
// recording span (one the sampler kept), or always with WithRootHitSpans.
func (h *hitRecorder) WantsHitOp(ctx context.Context) bool {
	// IsRecording rather than the span context's sampled flag: it is a
	// third cheaper, and this runs on every hit.
	return h.rootHits || trace.SpanFromContext(ctx).IsRecording()
}

// Hit counts an L1 hit that got no span. It allocates nothing.
func (h *hitRecorder) Hit(_ context.Context, stale bool) {
	s := &h.st.hits[stripe()]
	if stale {
		s.stale.Add(1)
	} else {
		s.hit.Add(1)
	}
}

// Event records ev in the metrics and, for events worth seeing in a trace,
// as an event of the current span (when it is recording). Hits, misses and
// backplane traffic are already told by span attributes and are not span
// events.
func (o *Observer) Event(ctx context.Context, ev core.Event) {
	st := o.state(ev.Cache)
	switch ev.Kind {
	case core.EventHit, core.EventMiss, core.EventStaleHit, core.EventBackplaneSent, core.EventBackplaneReceived:
		if ev.Kind == core.EventBackplaneSent && ev.Err != nil {
			break // a failed publish is worth an event
		}
		return
	case core.EventEviction:
		o.m.evictions.Add(ctx, 1, st.cache...)
		return
	case core.EventFailSafeActivated:
		o.m.failSafe.Add(ctx, 1, st.cache...)
	case core.EventFactoryError:
		o.m.factoryErrors.Add(ctx, 1, metric.WithAttributes(AttrCacheName.String(st.name), AttrErrorType.String(ErrorType(ev.Err))))
	case core.EventFactorySoftTimeout:
		o.m.factoryTimeouts.Add(ctx, 1, st.soft...)
	case core.EventFactoryHardTimeout:
		o.m.factoryTimeouts.Add(ctx, 1, st.hard...)
	case core.EventLockTimeout:
		o.m.lockTimeouts.Add(ctx, 1, st.cache...)
	case core.EventL2Error:
		o.m.l2Errors.Add(ctx, 1, st.cache...)
	case core.EventBackplaneCorrupt:
		o.m.bpCorrupt.Add(ctx, 1, st.cache...)
	case core.EventBackplaneRejected:
		o.m.bpRejected.Add(ctx, 1, st.cache...)
	case core.EventBackplaneBehind:
		if ev.Key == "behind" {
			o.m.bpBehind.Add(ctx, 1, st.cache...)
		}
	case core.EventBackplaneLoss:
		o.m.losses.Add(ctx, 1, metric.WithAttributes(AttrCacheName.String(st.name), AttrReason.String(ev.Key)))
	case core.EventCircuitBreakerChange:
		// Key is "component:state", such as "l2:open".
		comp, state, _ := strings.Cut(ev.Key, ":")
		st.mu.Lock()
		st.breakers[comp] = state == "open"
		st.mu.Unlock()
		o.m.breakerChanges.Add(ctx, 1, metric.WithAttributes(AttrCacheName.String(st.name),
			AttrComponent.String(comp), AttrState.String(state)))
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		if outer, ok := ctx.Value(outerSpanKey{}).(trace.Span); ok && outer.IsRecording() {
			span = outer
		} else {
			return
		}
	}
	var buf [2]attribute.KeyValue
	attrs := buf[:0]
	switch {
	case ev.Kind == core.EventCircuitBreakerChange:
		comp, state, _ := strings.Cut(ev.Key, ":")
		attrs = append(attrs, AttrComponent.String(comp), AttrState.String(state))
	case ev.Kind == core.EventBackplaneLoss:
		attrs = append(attrs, AttrReason.String(ev.Key))
	case o.keys && ev.Key != "":
		attrs = append(attrs, AttrKey.String(ev.Key))
	}
	if ev.Err != nil {
		attrs = append(attrs, AttrErrorType.String(ErrorType(ev.Err)))
	}
	span.AddEvent("strata."+ev.Kind.String(), trace.WithAttributes(attrs...))
}
