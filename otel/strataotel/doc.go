// Package strataotel traces and measures strata caches with OpenTelemetry.
//
// New returns a core.Observer; put it in core.Options.Observers:
//
//	obs := strataotel.New(strataotel.WithTracerProvider(tp), strataotel.WithMeterProvider(mp))
//	c, err := core.New(core.Options{Name: "users", Observers: []core.Observer{obs}})
//
// With no options it uses the global providers and propagators
// (otel.GetTracerProvider, otel.GetMeterProvider, otel.GetTextMapPropagator).
//
// # Spans
//
// One span per public operation: strata.get_or_set, strata.get, strata.set,
// strata.remove, strata.expire, strata.remove_by_tag, strata.expire_by_tag and
// strata.clear. Child spans only where time is spent outside the process or in
// user code: strata.factory, strata.l2.get, strata.l2.set, strata.l2.delete and
// strata.backplane.publish (kind PRODUCER). A message received from another
// node is a strata.backplane.receive span (kind CONSUMER, its own trace) linked
// to the write on the other node: the write operations put their W3C
// traceparent in their context under core.TraceParentKey, and core carries it in
// the backplane message. An eager refresh runs its factory in its own trace,
// linked to the hit that started it.
//
// An L1 hit of GetOrSet gets a span only when its context holds a recording
// span, that is inside a sampled trace (or, with
// WithRootHitSpans, whenever the sampler says so); otherwise it is only
// counted, without allocating, so that a hot cache does not flood a tracing
// backend. A miss is not an error; errors set the span status and the
// error.type attribute.
//
// # Metrics
//
// Operation counts by operation and result, durations of operations,
// factories and L2 calls, the backplane delivery lag, fail-safe activations,
// factory errors and timeouts, circuit breaker changes and state, and L1
// evictions. RegisterCacheMetrics adds the gauges that need the cache itself
// (L1 entries, the auto-recovery queue, backplane counters). Metric attributes
// never hold a key. docs/observability.md lists every span, attribute and
// instrument.
package strataotel
