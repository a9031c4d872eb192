package strataotel_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

func ExampleNew() {
	// In a service: the providers set up for OTLP export, or none at all
	// to use the global ones (strataotel.New()).
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	obs := strataotel.New(strataotel.WithTracerProvider(tp))
	defer obs.Shutdown()
	c, _ := core.New(core.Options{Name: "users", Observers: []core.Observer{obs}})
	defer c.Close()

	ctx, req := tp.Tracer("example").Start(context.Background(), "GET /users/42")
	load := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) { return "Ada", nil }
	core.GetOrSet(ctx, c, "user:42", load) // a miss: the factory runs
	core.GetOrSet(ctx, c, "user:42", load) // a hit inside a sampled trace
	req.End()

	for _, s := range spans.Ended() {
		fmt.Println(s.Name())
	}
	// Output:
	// strata.factory
	// strata.get_or_set
	// strata.get_or_set
	// GET /users/42
}

func ExampleNew_withoutKeys() {
	// Keys may be personal data: leave them out of spans.
	obs := strataotel.New(strataotel.WithoutKeys())
	c, _ := core.New(core.Options{Name: "sessions", Observers: []core.Observer{obs}})
	defer c.Close()
	fmt.Println(c.Name())
	// Output: sessions
}

func ExampleRegisterCacheMetrics() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	reg, err := strataotel.RegisterCacheMetrics(c, mp)
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()

	core.Set(context.Background(), c, "user:42", "Ada")
	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == strataotel.MetricL1Entries {
			fmt.Println(m.Name, m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
		}
	}
	// Output: strata.cache.l1.entries 1
}

func ExampleErrorType() {
	err := &core.FactoryError{Key: "user:42", Err: context.DeadlineExceeded}
	fmt.Println(strataotel.ErrorType(err), strataotel.ErrorType(core.ErrFactoryTimeout))
	// Output: timeout timeout
}
