package strataotel_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

// TestDroppedBackplaneMessagesCounted: messages a node drops for a bad
// signature or as undecodable are counted per cache, by the observer
// (strata.cache.backplane.rejected, .corrupt) and by RegisterCacheMetrics
// (strata.cache.backplane.messages{strata.result=rejected|corrupt}).
func TestDroppedBackplaneMessagesCounted(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	key := bytes.Repeat([]byte("s"), 32)
	ring, _ := backplane.NewKeyring(key)
	bus := membackplane.NewBus()
	bp, attacker := bus.Connect(nil), bus.Connect(nil)
	t.Cleanup(func() { bp.Close(); attacker.Close() })
	c := newCache(t, core.Options{Name: "signed", Backplane: bp, BackplaneSigningKeys: [][]byte{key},
		Observers: []core.Observer{h.observer(t)}})
	reg, err := strataotel.RegisterCacheMetrics(c, h.mp)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	waitFor(t, "backplane connected", func() bool { return !c.Stats().Disconnected })

	m := backplane.Message{Cache: "signed", Source: "attacker", Seq: 1, Action: backplane.ActionRemove,
		Key: "k", Timestamp: time.Now().UnixNano()}
	raw, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	truncated, _ := ring.Seal(bytes.Clone(raw[:len(raw)-1]))
	for _, p := range [][]byte{raw, raw, truncated} {
		if err := attacker.Publish(ctx, backplane.ChannelName("signed"), p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "messages dropped", func() bool {
		s := c.Stats()
		return s.BackplaneRejected == 2 && s.BackplaneCorrupt == 1
	})

	rm := h.collect(t)
	name := strataotel.AttrCacheName.String("signed")
	for _, tc := range []struct {
		metric string
		result string
		want   int64
	}{
		{strataotel.MetricBackplaneRejected, "rejected", 2},
		{strataotel.MetricBackplaneCorrupt, "corrupt", 1},
	} {
		if n := intValue(t, rm, tc.metric, name); n != tc.want {
			t.Errorf("%s = %d, want %d", tc.metric, n, tc.want)
		}
		if n := intValue(t, rm, strataotel.MetricBackplaneMessages, name, strataotel.AttrDirection.String("received"),
			strataotel.AttrResult.String(tc.result)); n != tc.want {
			t.Errorf("%s{received, %s} = %d, want %d", strataotel.MetricBackplaneMessages, tc.result, n, tc.want)
		}
	}
}
