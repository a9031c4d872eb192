package rabbitbackplane

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/backplane"
)

// acks records the acknowledgements a subscription makes.
type acks struct {
	mu   sync.Mutex
	tags []uint64 // acknowledged with multiple
}

func (a *acks) Ack(tag uint64, multiple bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if multiple {
		a.tags = append(a.tags, tag)
	}
	return nil
}
func (a *acks) Nack(uint64, bool, bool) error { return nil }
func (a *acks) Reject(uint64, bool) error     { return nil }

func (a *acks) got() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.tags...)
}

// TestAcknowledgementsInBatches: deliveries are acknowledged together once
// half the prefetch is handled, and a batch that does not fill is
// acknowledged ackFlush after its first delivery, never left for the
// server's consumer_timeout.
func TestAcknowledgementsInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &acks{}
		s := newSubscription(&Backplane{prefetch: 4, kick: make(chan uint64, 1)}, "c", func([]byte) {}, nil)
		go s.run()
		defer func() { s.stopOnce.Do(func() { close(s.done) }); <-s.exited }()
		deliveries := make(chan amqp.Delivery)
		s.push(control{deliveries: deliveries, gen: 1, state: backplane.Connected})
		deliver := func(tag uint64) {
			deliveries <- amqp.Delivery{Acknowledger: a, DeliveryTag: tag, Body: []byte("m")}
			synctest.Wait()
		}
		deliver(1)
		if got := a.got(); len(got) != 0 {
			t.Fatalf("acknowledged %v after 1 of a batch of 2", got)
		}
		deliver(2) // the batch (half of 4) is full
		if got := a.got(); len(got) != 1 || got[0] != 2 {
			t.Fatalf("acknowledged %v, want [2] once 2 deliveries are handled", got)
		}
		deliver(3)
		time.Sleep(ackFlush - time.Millisecond)
		synctest.Wait()
		if got := a.got(); len(got) != 1 {
			t.Fatalf("acknowledged %v before ackFlush", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := a.got(); len(got) != 2 || got[1] != 3 {
			t.Fatalf("acknowledged %v, want [2 3]: the unfilled batch ackFlush after its delivery", got)
		}
		// Nothing handled since: no further acknowledgement.
		time.Sleep(10 * ackFlush)
		synctest.Wait()
		if got := a.got(); len(got) != 2 {
			t.Fatalf("acknowledged %v with nothing handled", got)
		}
	})
}
