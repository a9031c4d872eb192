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
		b.Run(bp+"/strata", func(b *testing.B) { benchStrata(b, bp) })
		b.Run(bp+"/raw", func(b *testing.B) {
			switch bp {
			case "redis":
				benchRawRedis(b)
			case "nats":
				benchRawNATS(b)
			case "amqp":
				benchRawAMQP(b)
			}
		})
	}
}

func benchStrata(b *testing.B, bp string) {
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
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		if err := core.Set(ctx, a.Cache, key, strconv.Itoa(i), core.WithDuration(time.Hour)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, wait(b, obs.got).Sub(start))
	}
	reportLatency(b, lat)
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

func benchRawRedis(b *testing.B) {
	ctx := context.Background()
	pub, sub := redistest.NewClient(b, nil), redistest.NewClient(b, nil)
	channel := "strata-it-bench-" + redistest.Unique()
	ps := sub.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		b.Fatal(err)
	}
	msgs := ps.Channel()
	payload := make([]byte, 100) // about a backplane message
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := pub.Publish(ctx, channel, payload).Err(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-msgs:
		case <-time.After(5 * time.Second):
			b.Fatal("no message within 5 s")
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

func benchRawNATS(b *testing.B) {
	url := natstest.URL(b)
	pub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	subject := "strata-it-bench." + redistest.Unique()
	msgs := make(chan *nats.Msg, 1)
	s, err := sub.ChanSubscribe(subject, msgs)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Unsubscribe() }()
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := pub.Publish(subject, payload); err != nil {
			b.Fatal(err)
		}
		select {
		case <-msgs:
		case <-time.After(5 * time.Second):
			b.Fatal("no message within 5 s")
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

func benchRawAMQP(b *testing.B) {
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
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := pub.PublishWithContext(ctx, exchange, "", false, false, amqp.Publishing{Body: payload}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-deliveries:
		case <-time.After(5 * time.Second):
			b.Fatal("no message within 5 s")
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// reportLatency reports the p50 and p99 of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Microsecond)
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
