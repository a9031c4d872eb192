package strataotel

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope name of strataotel's tracer and
// meter.
const ScopeName = "github.com/stratacache/strata/otel/strataotel"

// Version is strataotel's version, reported as the instrumentation scope
// version.
const Version = "0.1.0"

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	prop     propagation.TextMapPropagator
	noKeys   bool
	rootHits bool
}

// WithTracerProvider sets the tracer provider (default: the global one,
// read when New is called). A nil provider means the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the meter provider (default: the global one, read
// when New is called). A nil provider means the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithPropagators sets the propagator that writes the trace context carried
// by backplane messages and reads it back on the other node (default: the
// global one). Only the W3C traceparent field travels; when the propagator
// does not produce or understand it (it lacks propagation.TraceContext),
// propagation.TraceContext is used instead.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithoutKeys leaves cache keys (and tags) out of spans: no strata.key
// attribute, and error descriptions reduced to their error.type, since error
// messages may quote the key. Metrics never hold keys.
func WithoutKeys() Option {
	return optionFunc(func(c *config) { c.noKeys = true })
}

// WithRootHitSpans gives an L1 hit of GetOrSet made outside any trace its own
// root span, subject to the sampler. By default such a hit is only counted;
// a hit inside a sampled trace always gets its span.
func WithRootHitSpans() Option {
	return optionFunc(func(c *config) { c.rootHits = true })
}
