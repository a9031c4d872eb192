package integration

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
)

// receiptObserver sends the time each backplane message about key arrives.
type receiptObserver struct {
	key string
	got chan time.Time
}

func (o *receiptObserver) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }
func (o *receiptObserver) OpEnd(context.Context, *core.OpInfo)                         {}
func (o *receiptObserver) Event(_ context.Context, ev core.Event) {
	if ev.Kind == core.EventBackplaneReceived && ev.Key == o.key {
		select {
		case o.got <- time.Now():
		default:
		}
	}
}

// BenchmarkInvalidationLatency measures, for each backplane, how long after
// node A calls core.Set node B's observer gets EventBackplaneReceived for
// the key ("strata"), next to the raw client's publish→receive on the same
// server ("raw"). It reports the p50 and p99 of one trip at a time. Run it
// with a small count: -bench InvalidationLatency -benchtime 2000x.
func BenchmarkInvalidationLatency(b *testing.B) {
	for _, bp := range backplanes {
		b.Run(bp+"/strata", func(b *testing.B) { runTrips(b, strataTrip(b, bp)) })
		b.Run(bp+"/raw", func(b *testing.B) { runTrips(b, rawTrip(b, bp)) })
	}
}

// BenchmarkInvalidationLatencyPaired makes the same trips as
// BenchmarkInvalidationLatency, a strata trip and a raw one in turn, so
// that the load of a shared machine falls on both alike, and reports both
// distributions and the ratio of their p99s (the target is at most 1.3).
// Run it with -benchtime 3000x.
func BenchmarkInvalidationLatencyPaired(b *testing.B) {
	for _, bp := range backplanes {
		b.Run(bp, func(b *testing.B) {
			strata, raw := strataTrip(b, bp), rawTrip(b, bp)
			ls := make([]time.Duration, 0, b.N)
			lr := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				ls = append(ls, strata(i))
				lr = append(lr, raw(i))
			}
			reportPaired(b, ls, lr)
		})
	}
}

// trip makes the i-th one-way trip and returns how long it took.
type trip func(i int) time.Duration

func runTrips(b *testing.B, t trip) {
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		lat = append(lat, t(i))
	}
	reportLatency(b, lat)
}

// timedTrip returns a raw client's trip: publish, then wait for the next
// delivery on got.
func timedTrip[T any](b *testing.B, publish func() error, got <-chan T) trip {
	return func(int) time.Duration {
		start := time.Now()
		if err := publish(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			b.Fatal("no message within 5 s")
		}
		return time.Since(start)
	}
}

// rawTrip returns the raw client's publish→receive trip of backplane bp.
func rawTrip(b *testing.B, bp string) trip {
	switch bp {
	case "redis":
		return rawRedisTrip(b)
	case "nats":
		return rawNATSTrip(b)
	}
	return rawAMQPTrip(b)
}

// strataTrip returns a trip from core.Set on node A to the receipt of its
// backplane message on node B.
func strataTrip(b *testing.B, bp string) trip {
	const key = "profile:42"
	obs := &receiptObserver{key: key, got: make(chan time.Time, 1)}
	nodes := newCluster(b, clusterConfig{backplane: bp, nodes: 2, direct: true, observers: func(i int) []core.Observer {
		if i == 1 {
			return []core.Observer{obs}
		}
		return nil
	}})
	a := nodes[0]
	ctx := context.Background()
	return func(i int) time.Duration {
		start := time.Now()
		if err := core.Set(ctx, a.Cache, key, strconv.Itoa(i), core.WithDuration(time.Hour)); err != nil {
			b.Fatal(err)
		}
		return wait(b, obs.got).Sub(start)
	}
}

func wait(b *testing.B, ch <-chan time.Time) time.Time {
	select {
	case t := <-ch:
		return t
	case <-time.After(5 * time.Second):
		b.Fatal("no message within 5 s")
		return time.Time{}
	}
}

func rawRedisTrip(b *testing.B) trip {
	ctx := context.Background()
	pub, sub := redistest.NewClient(b, nil), redistest.NewClient(b, nil)
	channel := "strata-it-bench-" + redistest.Unique()
	ps := sub.Subscribe(ctx, channel)
	b.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		b.Fatal(err)
	}
	msgs := ps.Channel()
	payload := make([]byte, 100) // about a backplane message
	return timedTrip(b, func() error { return pub.Publish(ctx, channel, payload).Err() }, msgs)
}

func rawNATSTrip(b *testing.B) trip {
	url := natstest.URL(b)
	pub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pub.Close)
	sub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sub.Close)
	subject := "strata-it-bench." + redistest.Unique()
	msgs := make(chan *nats.Msg, 1)
	s, err := sub.ChanSubscribe(subject, msgs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Unsubscribe() })
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	return timedTrip(b, func() error { return pub.Publish(subject, payload) }, msgs)
}

func rawAMQPTrip(b *testing.B) trip {
	url := rabbittest.URL(b)
	exchange := "strata-it-bench-" + redistest.Unique()
	b.Cleanup(func() { rabbittest.DeleteExchanges(b, url, []string{exchange}) })
	channel := func() *amqp.Channel {
		conn, err := amqp.Dial(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.ExchangeDeclare(exchange, amqp.ExchangeFanout, false, false, false, false, nil); err != nil {
			b.Fatal(err)
		}
		return ch
	}
	pub, sub := channel(), channel()
	q, err := sub.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.QueueBind(q.Name, "", exchange, false, nil); err != nil {
		b.Fatal(err)
	}
	deliveries, err := sub.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	payload := make([]byte, 100)
	return timedTrip(b, func() error {
		return pub.PublishWithContext(ctx, exchange, "", false, false, amqp.Publishing{Body: payload})
	}, deliveries)
}

// reportLatency reports the p50 and p99 of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	p50, p99 := percentiles(lat)
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
}

// reportPaired reports the p50 and p99 of strata's and the raw client's
// latencies, in microseconds, and their ratios.
func reportPaired(b *testing.B, strata, raw []time.Duration) {
	s50, s99 := percentiles(strata)
	r50, r99 := percentiles(raw)
	b.ReportMetric(s50, "strata-p50-µs")
	b.ReportMetric(s99, "strata-p99-µs")
	b.ReportMetric(r50, "raw-p50-µs")
	b.ReportMetric(r99, "raw-p99-µs")
	b.ReportMetric(s50/r50, "p50-ratio")
	b.ReportMetric(s99/r99, "p99-ratio")
	b.ReportMetric(0, "ns/op")
}

// percentiles sorts lat and returns its p50 and p99 in microseconds.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Microsecond)
	}
	return q(0.50), q(0.99)
}
