package strataotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stratacache/strata/core"
)

// Names of the instruments RegisterCacheMetrics adds.
const (
	MetricL1Entries          = "strata.cache.l1.entries"
	MetricRecoveryQueued     = "strata.cache.recovery.queued"
	MetricRecoveryDropped    = "strata.cache.recovery.dropped"
	MetricBackplaneMessages  = "strata.cache.backplane.messages"
	MetricBackplaneConnected = "strata.cache.backplane.connected"
	MetricBackplaneCurrent   = "strata.cache.backplane.current"
	MetricL2Corrupt          = "strata.cache.l2.corrupt"
)

// AttrDirection says whether a backplane message was sent or received.
const AttrDirection = attribute.Key("strata.direction")

// RegisterCacheMetrics reports, at each collection, the state of c that
// events do not tell: the number of L1 entries (c.Len), the auto-recovery
// queue and the backplane counters of c.Stats. A nil mp means the global
// meter provider. Call Unregister on the result when c is closed. Register
// each cache name once per meter provider: two caches of the same name would
// report the same attribute set.
func RegisterCacheMetrics(c *core.Cache, mp metric.MeterProvider) (metric.Registration, error) {
	if c == nil {
		return nil, errors.New("strataotel: RegisterCacheMetrics: nil cache")
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	entries, err1 := m.Int64ObservableGauge(MetricL1Entries, metric.WithUnit("{entry}"),
		metric.WithDescription("Entries held in L1 (approximate)."))
	queued, err2 := m.Int64ObservableGauge(MetricRecoveryQueued, metric.WithUnit("{item}"),
		metric.WithDescription("L2 writes and backplane publishes waiting for auto-recovery."))
	dropped, err3 := m.Int64ObservableCounter(MetricRecoveryDropped, metric.WithUnit("{item}"),
		metric.WithDescription("Auto-recovery items dropped (queue full, or recovery off)."))
	messages, err4 := m.Int64ObservableCounter(MetricBackplaneMessages, metric.WithUnit("{message}"),
		metric.WithDescription("Backplane messages, by strata.direction (sent, received) and strata.result (ok, error, corrupt, rejected)."))
	connected, err5 := m.Int64ObservableGauge(MetricBackplaneConnected, metric.WithUnit("1"),
		metric.WithDescription("0 while the backplane is disconnected, else 1 (1 without a backplane)."))
	corrupt, err6 := m.Int64ObservableCounter(MetricL2Corrupt, metric.WithUnit("{entry}"),
		metric.WithDescription("L2 entries that could not be decoded (treated as misses)."))
	current, err7 := m.Int64ObservableGauge(MetricBackplaneCurrent, metric.WithUnit("1"),
		metric.WithDescription("0 while this node's subscription is behind (its own messages take over half the staleness bound to come back), else 1."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return nil, err
	}
	cn := AttrCacheName.String(c.Name())
	cache := metric.WithAttributeSet(attribute.NewSet(cn))
	msg := func(dir, res string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(cn, AttrDirection.String(dir), AttrResult.String(res)))
	}
	sentOK, sentErr := msg("sent", "ok"), msg("sent", "error")
	recvOK, recvCorrupt, recvRejected := msg("received", "ok"), msg("received", "corrupt"), msg("received", "rejected")
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := c.Stats()
		o.ObserveInt64(entries, int64(c.Len()), cache)
		o.ObserveInt64(queued, int64(s.RecoveryQueued), cache)
		o.ObserveInt64(dropped, int64(s.RecoveryDropped), cache)
		o.ObserveInt64(messages, int64(s.BackplaneSent), sentOK)
		o.ObserveInt64(messages, int64(s.BackplaneErrors), sentErr)
		o.ObserveInt64(messages, int64(s.BackplaneReceived), recvOK)
		o.ObserveInt64(messages, int64(s.BackplaneCorrupt), recvCorrupt)
		o.ObserveInt64(messages, int64(s.BackplaneRejected), recvRejected)
		var up int64 = 1
		if s.Disconnected {
			up = 0
		}
		o.ObserveInt64(connected, up, cache)
		var cur int64 = 1
		if s.Behind {
			cur = 0
		}
		o.ObserveInt64(current, cur, cache)
		o.ObserveInt64(corrupt, int64(s.L2Corrupt), cache)
		return nil
	}, entries, queued, dropped, messages, connected, current, corrupt)
}
