package strataotel

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const traceparentHeader = "traceparent"

// tpCarrier is a TextMapCarrier holding only the W3C traceparent, the one
// field a backplane message carries.
type tpCarrier struct{ tp string }

func (c *tpCarrier) Get(key string) string {
	if key == traceparentHeader {
		return c.tp
	}
	return ""
}

func (c *tpCarrier) Set(key, value string) {
	if key == traceparentHeader {
		c.tp = value
	}
}

func (c *tpCarrier) Keys() []string { return []string{traceparentHeader} }

// inject returns the traceparent of the span in ctx.
func (o *Observer) inject(ctx context.Context) string {
	var c tpCarrier
	o.prop.Inject(ctx, &c)
	if c.tp == "" {
		propagation.TraceContext{}.Inject(ctx, &c)
	}
	return c.tp
}

// extract parses a traceparent ("" or garbage: an invalid span context).
func (o *Observer) extract(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	c := &tpCarrier{tp: tp}
	sc := trace.SpanContextFromContext(o.prop.Extract(context.Background(), c))
	if !sc.IsValid() {
		sc = trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), c))
	}
	return sc
}

// writes remembers the spans of the operations now running that may publish
// a change, by cache and key. Core publishes on its own goroutine, with a
// context that does not hold the operation's span; the publish span finds
// its parent here. (A core that passed the traceparent in OpInfo.TraceParent
// of the publish would make this unnecessary; it is then used instead.)
type writes struct {
	mu sync.Mutex
	m  map[writeKey][]writer
}

type writeKey struct{ cache, key string }

type writer struct {
	sc     trace.SpanContext
	action string
}

func (w *writes) add(cache, key string, wr writer) {
	k := writeKey{cache, key}
	w.mu.Lock()
	w.m[k] = append(w.m[k], wr)
	w.mu.Unlock()
}

func (w *writes) remove(cache, key string, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	k := writeKey{cache, key}
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.m[k]
	for i := range ws {
		if ws[i].sc.SpanID() == sc.SpanID() && ws[i].sc.TraceID() == sc.TraceID() {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(w.m, k)
	} else {
		w.m[k] = ws
	}
}

// latest returns the most recently started running write of key.
func (w *writes) latest(cache, key string) (writer, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.m[writeKey{cache, key}]
	if len(ws) == 0 {
		return writer{}, false
	}
	return ws[len(ws)-1], true
}
