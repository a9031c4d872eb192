package backplanetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
)

// testSubscribeIsLive: a payload published right after Subscribe returns is
// delivered, and Connected is reported first.
func (s suite) testSubscribeIsLive(t *testing.T) {
	a, b := s.node(t), s.node(t)
	for i := range 5 {
		ch := newChannel()
		r := newRecorder(fmt.Sprintf("subscription %d", i))
		subscribe(t, a, ch, r)
		payload := fmt.Appendf(nil, "first-%d", i)
		publish(t, b, ch, payload) // once: no retry
		r.waitPayload(t, payload)
		r.waitState(t, backplane.Connected, 0)
		if st := r.states(); st[0] != backplane.Connected {
			t.Errorf("first state reported %v, want Connected", st[0])
		}
	}
}

// testDeliversToOtherNodes: with three nodes, what each publishes reaches the
// two others exactly once.
func (s suite) testDeliversToOtherNodes(t *testing.T) {
	ch := newChannel()
	nodes := []backplane.Backplane{s.node(t), s.node(t), s.node(t)}
	recs := make([]*recorder, len(nodes))
	for i, n := range nodes {
		recs[i] = newRecorder(fmt.Sprintf("node %d", i))
		subscribe(t, n, ch, recs[i])
	}
	msg := func(i int) []byte { return fmt.Appendf(nil, "node%d-msg", i) }
	fence := func(i int) []byte { return fmt.Appendf(nil, "node%d-fence", i) }
	for i, n := range nodes {
		publish(t, n, ch, msg(i))
		publish(t, n, ch, fence(i))
		for j := range nodes {
			// Every node, the publisher too: it receives its own
			// payloads (checked below), and under load its fence may
			// come back after the others have theirs.
			recs[j].waitPayload(t, fence(i))
		}
	}
	for j, r := range recs {
		var want, got [][]byte
		for i := range nodes {
			if i != j {
				want = append(want, msg(i), fence(i))
			}
		}
		own := fmt.Appendf(nil, "node%d-", j)
		for _, p := range r.payloads() {
			if !bytes.HasPrefix(p, own) {
				got = append(got, p)
			}
		}
		if !sameBytes(got, want) {
			t.Errorf("node %d received %s from the others, want %s", j, showAll(got), showAll(want))
		}
		// A node receives its own payloads too, once
		// (testOwnPayloadsAfterEarlierOnes).
		if n := r.count(msg(j)); n != 1 {
			t.Errorf("node %d received its own payload %d times, want once", j, n)
		}
	}
}

// testOrderPerPublisher: payloads published one after the other by one
// node arrive in that order.
func (s suite) testOrderPerPublisher(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	r := newRecorder("receiver")
	subscribe(t, b, ch, r)
	const n = 300
	for i := range n {
		publish(t, a, ch, fmt.Appendf(nil, "seq-%04d", i))
	}
	waitUntil(t, fmt.Sprintf("%d payloads", n), func() bool { return len(r.payloads()) >= n })
	got := r.payloads()
	if len(got) != n {
		t.Fatalf("received %d payloads, want %d", len(got), n)
	}
	for i, p := range got {
		if want := fmt.Sprintf("seq-%04d", i); string(p) != want {
			t.Fatalf("payload %d is %q, want %q (order not kept)", i, p, want)
		}
	}
}

// testOwnPayloadsAfterEarlierOnes: a node receives its own payloads,
// exactly once each, and after every payload another node published
// before it (core's delivery watermark relies on this: once a node reads
// back a payload it sent at t, it has heard everything published before t;
// a LooseOrder harness is exempt from the second part).
func (s suite) testOwnPayloadsAfterEarlierOnes(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	r := newRecorder("a")
	subscribe(t, a, ch, r)
	const n = 50
	for i := range n {
		publish(t, b, ch, fmt.Appendf(nil, "b-%02d", i))
		publish(t, a, ch, fmt.Appendf(nil, "a-%02d", i))
	}
	last := fmt.Appendf(nil, "a-%02d", n-1)
	r.waitPayload(t, last)
	lo, ok := s.h.(LooseOrder)
	loose := ok && lo.LooseCrossPublisherOrder()
	seen := make(map[string]int)
	for _, p := range r.payloads() {
		seen[string(p)]++
		var i int
		if _, err := fmt.Sscanf(string(p), "a-%d", &i); err == nil && !loose {
			if prior := fmt.Sprintf("b-%02d", i); seen[prior] == 0 {
				t.Fatalf("a read its own %q before %q, which b published before a sent it", p, prior)
			}
		}
	}
	for i := range n {
		if own := fmt.Sprintf("a-%02d", i); seen[own] != 1 {
			t.Errorf("a read its own %q %d times, want once", own, seen[own])
		}
	}
}

// testPayloads: payloads arrive byte for byte: every byte value, empty, and
// 64 KiB.
func (s suite) testPayloads(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	r := newRecorder("receiver")
	subscribe(t, b, ch, r)
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(255 - i)
	}
	big := make([]byte, 64<<10)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(big)
	want := [][]byte{every, nil, {}, {0}, big, []byte("fence")}
	for _, p := range want {
		publish(t, a, ch, p)
	}
	r.waitPayload(t, []byte("fence"))
	if got := r.payloads(); !sameBytes(got, want) {
		t.Errorf("received %s, want %s", showAll(got), showAll(want))
		for i := range min(len(got), len(want)) {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("payload %d: got %d bytes, want %d, differing", i, len(got[i]), len(want[i]))
			}
		}
	}
}

// testPayloadReuse: the publisher may overwrite its buffer as soon as
// Publish returns.
func (s suite) testPayloadReuse(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	r := newRecorder("receiver")
	subscribe(t, b, ch, r)
	const n, size = 100, 4096
	buf := make([]byte, size)
	for i := range n {
		for j := range buf {
			buf[j] = byte(i)
		}
		publish(t, a, ch, buf)
	}
	for j := range buf {
		buf[j] = 0xee
	}
	waitUntil(t, fmt.Sprintf("%d payloads", n), func() bool { return len(r.payloads()) >= n })
	for i, p := range r.payloads() {
		if !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, size)) {
			t.Fatalf("payload %d changed after Publish returned: starts %x, want %d bytes of %02x", i, p[:min(len(p), 8)], size, byte(i))
		}
	}
}

// testChannelIsolation: payloads stay on their channel, even when one name
// is a prefix of another; publishing on a channel nobody listens to works.
func (s suite) testChannelIsolation(t *testing.T) {
	a, b := s.node(t), s.node(t)
	base := fmt.Sprintf("backplanetest-%016x", rand.Uint64())
	ch1, ch2, ch3 := backplane.ChannelName(base), backplane.ChannelName(base+"-2"), backplane.ChannelName(base+"-3")
	r1, r2 := newRecorder("channel 1"), newRecorder("channel 2")
	subscribe(t, b, ch1, r1)
	subscribe(t, b, ch2, r2)
	publish(t, a, ch3, []byte("three"))
	publish(t, a, ch1, []byte("one"))
	publish(t, a, ch2, []byte("two"))
	publish(t, a, ch1, []byte("fence"))
	publish(t, a, ch2, []byte("fence"))
	r1.waitPayload(t, []byte("fence"))
	r2.waitPayload(t, []byte("fence"))
	if got, want := r1.payloads(), [][]byte{[]byte("one"), []byte("fence")}; !sameBytes(got, want) {
		t.Errorf("channel 1 received %s, want %s", showAll(got), showAll(want))
	}
	if got, want := r2.payloads(), [][]byte{[]byte("two"), []byte("fence")}; !sameBytes(got, want) {
		t.Errorf("channel 2 received %s, want %s", showAll(got), showAll(want))
	}
}

// testTwoSubscriptionsOneChannel: two subscriptions of one node to one
// channel each get every payload, and closing one leaves the other.
func (s suite) testTwoSubscriptionsOneChannel(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	r1, r2 := newRecorder("subscription 1"), newRecorder("subscription 2")
	sub1 := subscribe(t, b, ch, r1)
	subscribe(t, b, ch, r2)
	publish(t, a, ch, []byte("both"))
	r1.waitPayload(t, []byte("both"))
	r2.waitPayload(t, []byte("both"))
	if err := sub1.Close(); err != nil {
		t.Fatalf("Subscription.Close: %v", err)
	}
	r1.markClosed()
	publish(t, a, ch, []byte("second only"))
	r2.waitPayload(t, []byte("second only"))
	if n := r1.count([]byte("both")); n != 1 {
		t.Errorf("subscription 1 received its payload %d times, want once", n)
	}
	if n := r2.count([]byte("both")); n != 1 {
		t.Errorf("subscription 2 received its payload %d times, want once", n)
	}
}

// testSubscriptionClose: no callback runs after Subscription.Close returns,
// Close is idempotent, and the node can subscribe again.
func (s suite) testSubscriptionClose(t *testing.T) {
	a, b, c := s.node(t), s.node(t), s.node(t)
	ch := newChannel()
	rb, rc := newRecorder("closed subscription"), newRecorder("observer")
	sub := subscribe(t, b, ch, rb)
	subscribe(t, c, ch, rc)
	publish(t, a, ch, []byte("before"))
	rb.waitPayload(t, []byte("before"))
	rc.waitPayload(t, []byte("before"))
	err, ok := returnsWithin(prompt, sub.Close)
	if !ok {
		t.Fatalf("Subscription.Close did not return within %v", prompt)
	}
	if err != nil {
		t.Fatalf("Subscription.Close: %v", err)
	}
	rb.markClosed()
	if err, ok := returnsWithin(prompt, sub.Close); !ok || err != nil {
		t.Errorf("second Subscription.Close = %v (returned: %v), want nil at once", err, ok)
	}
	for i := range 20 {
		publish(t, a, ch, fmt.Appendf(nil, "after-%d", i))
	}
	rc.waitPayload(t, []byte("after-19"))
	if n := len(rb.payloads()); n != 1 {
		t.Errorf("closed subscription received %d payloads, want 1 (before Close)", n)
	}
	again := newRecorder("new subscription")
	subscribe(t, b, ch, again)
	publish(t, a, ch, []byte("again"))
	again.waitPayload(t, []byte("again"))
}

// testConcurrentPublishers: goroutines publishing at once on two nodes while
// another subscribes and unsubscribes; every payload arrives once, in order
// per goroutine.
func (s suite) testConcurrentPublishers(t *testing.T) {
	pubs := []backplane.Backplane{s.node(t), s.node(t)}
	c := s.node(t)
	ch := newChannel()
	r := newRecorder("receiver")
	subscribe(t, c, ch, r)
	const goroutines, each = 4, 50
	var wg sync.WaitGroup
	for p, node := range pubs {
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					ctx, cancel := callCtx()
					err := node.Publish(ctx, ch, fmt.Appendf(nil, "p%d-g%d-%03d", p, g, i))
					cancel()
					if err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			})
		}
	}
	side := newChannel()
	wg.Go(func() {
		for range 10 {
			ctx, cancel := callCtx()
			sub, err := c.Subscribe(ctx, side, func([]byte) {}, func(backplane.State, error) {})
			cancel()
			if err != nil {
				t.Errorf("Subscribe while others publish: %v", err)
				return
			}
			if err := sub.Close(); err != nil {
				t.Errorf("Subscription.Close while others publish: %v", err)
			}
		}
	})
	wg.Wait()
	total := len(pubs) * goroutines * each
	waitUntil(t, fmt.Sprintf("%d payloads", total), func() bool { return len(r.payloads()) >= total })
	seen := make(map[string]bool)
	last := make(map[string]int)
	for _, p := range r.payloads() {
		if seen[string(p)] {
			t.Errorf("payload %q received twice", p)
		}
		seen[string(p)] = true
		var pub, g, i int
		if _, err := fmt.Sscanf(string(p), "p%d-g%d-%d", &pub, &g, &i); err != nil {
			t.Errorf("unexpected payload %q", p)
			continue
		}
		who := fmt.Sprintf("p%d-g%d", pub, g)
		if prev, ok := last[who]; ok && i <= prev {
			t.Errorf("%s: payload %d arrived after %d", who, i, prev)
		}
		last[who] = i
	}
	if len(seen) != total {
		t.Errorf("received %d distinct payloads, want %d", len(seen), total)
	}
}

// testContextDone: Publish and Subscribe with a done context fail promptly
// with an error wrapping the context's error, and leave the node usable.
func (s suite) testContextDone(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), -1)
	defer cancel2()
	failed := newRecorder("subscription with a done context")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline exceeded", expired, context.DeadlineExceeded},
	} {
		err, ok := returnsWithin(prompt, func() error { return a.Publish(tc.ctx, ch, []byte("never")) })
		switch {
		case !ok:
			t.Errorf("Publish with a %s context did not return within %v", tc.name, prompt)
		case !errors.Is(err, tc.want):
			t.Errorf("Publish with a %s context = %v, want an error wrapping %v", tc.name, err, tc.want)
		}
		type result struct {
			sub backplane.Subscription
			err error
		}
		res, ok := returnsWithin(prompt, func() result {
			sub, err := a.Subscribe(tc.ctx, ch, failed.onMessage, failed.onState)
			return result{sub, err}
		})
		switch {
		case !ok:
			t.Errorf("Subscribe with a %s context did not return within %v", tc.name, prompt)
		case !errors.Is(res.err, tc.want):
			t.Errorf("Subscribe with a %s context = %v, want an error wrapping %v", tc.name, res.err, tc.want)
			if res.err == nil && res.sub != nil {
				_ = res.sub.Close()
			}
		}
	}
	failed.markClosed() // a failed Subscribe must never call back
	r := newRecorder("receiver")
	subscribe(t, a, ch, r)
	publish(t, b, ch, []byte("still works"))
	publish(t, a, ch, []byte("still works too"))
	r.waitPayload(t, []byte("still works"))
	r.waitPayload(t, []byte("still works too"))
	failed.check(t)
	if n := r.count([]byte("never")); n != 0 {
		t.Errorf("a payload published with a done context was delivered %d times", n)
	}
}

// testUseAfterClose: Close is idempotent, stops the node's callbacks, and
// makes Publish and Subscribe fail with ErrClosed.
func (s suite) testUseAfterClose(t *testing.T) {
	a, b, c := s.node(t), s.node(t), s.node(t)
	ch := newChannel()
	ra, rc := newRecorder("subscription of the closed node"), newRecorder("observer")
	sub := subscribe(t, a, ch, ra)
	subscribe(t, c, ch, rc)
	publish(t, b, ch, []byte("before"))
	ra.waitPayload(t, []byte("before"))
	for i := range 2 {
		err, ok := returnsWithin(prompt, a.Close)
		if !ok {
			t.Fatalf("Close #%d did not return within %v", i+1, prompt)
		}
		if err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
		ra.markClosed()
	}
	ctx, cancel := callCtx()
	defer cancel()
	if err, ok := returnsWithin(prompt, func() error { return a.Publish(ctx, ch, []byte("closed")) }); !ok || !errors.Is(err, backplane.ErrClosed) {
		t.Errorf("Publish after Close = %v (returned: %v), want an error wrapping backplane.ErrClosed at once", err, ok)
	}
	late := newRecorder("subscription after Close")
	late.markClosed()
	if err, ok := returnsWithin(prompt, func() error {
		sub, err := a.Subscribe(ctx, ch, late.onMessage, late.onState)
		if err == nil {
			_ = sub.Close()
		}
		return err
	}); !ok || !errors.Is(err, backplane.ErrClosed) {
		t.Errorf("Subscribe after Close = %v (returned: %v), want an error wrapping backplane.ErrClosed at once", err, ok)
	}
	if _, ok := returnsWithin(prompt, sub.Close); !ok {
		t.Errorf("Subscription.Close after Backplane.Close did not return within %v", prompt)
	}
	publish(t, b, ch, []byte("after"))
	rc.waitPayload(t, []byte("after"))
	late.check(t)
	if n := ra.count([]byte("after")); n != 0 {
		t.Errorf("closed node received a later payload %d times", n)
	}
}

// testReconnect: a node cut off reports Disconnected, fails to publish
// within a few seconds, then reports Reconnected and receives again.
func (s suite) testReconnect(t *testing.T, d Disconnector) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	r := newRecorder("subscription of the disconnected node")
	subscribe(t, b, ch, r)
	publish(t, a, ch, []byte("before"))
	r.waitPayload(t, []byte("before"))

	ctx, cancel := callCtx()
	defer cancel()
	if err := d.Disconnect(ctx, t, b); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	r.waitState(t, backplane.Disconnected, 1)
	disconnectedAt := len(r.states())

	err, ok := returnsWithin(prompt, func() error { return b.Publish(ctx, ch, []byte("while down")) })
	switch {
	case !ok:
		t.Errorf("Publish on a disconnected node did not return within %v", prompt)
	case err == nil:
		t.Errorf("Publish on a disconnected node succeeded, want an error")
	}

	if err := d.Reconnect(ctx, t, b); err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	r.waitState(t, backplane.Reconnected, disconnectedAt)

	// Delivery resumes. A transport may take a moment after reporting
	// Reconnected, so publish every 100ms until one arrives.
	for i := 0; ; i++ {
		publish(t, a, ch, fmt.Appendf(nil, "after-%d", i))
		if resumed(r) {
			break
		}
		if i == int(waitTimeout/(100*time.Millisecond)) {
			t.Fatalf("no payload delivered within %v after Reconnected", waitTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitUntil(t, "Publish to succeed on the reconnected node", func() bool {
		ctx, cancel := callCtx()
		defer cancel()
		return b.Publish(ctx, ch, []byte("from the reconnected node")) == nil
	})
}

func resumed(r *recorder) bool {
	for range 20 {
		for _, p := range r.payloads() {
			if bytes.HasPrefix(p, []byte("after-")) {
				return true
			}
		}
		time.Sleep(pollEvery)
	}
	return false
}

// testUnreachable: a node pointed at no server fails instead of hanging.
func (s suite) testUnreachable(t *testing.T, u UnreachableMaker) {
	ctx, cancel := callCtx()
	defer cancel()
	type made struct {
		b   backplane.Backplane
		err error
	}
	m, ok := returnsWithin(callTimeout+prompt, func() made {
		b, err := u.MakeUnreachableBackplane(ctx, t)
		return made{b, err}
	})
	switch {
	case !ok:
		t.Fatalf("MakeUnreachableBackplane did not return within %v (its context's deadline is %v)", callTimeout+prompt, callTimeout)
	case m.err != nil:
		t.Logf("MakeUnreachableBackplane failed, as it may: %v", m.err)
		return
	case m.b == nil:
		t.Fatal("MakeUnreachableBackplane returned a nil Backplane and no error")
	}
	b := m.b
	t.Cleanup(func() {
		if _, ok := returnsWithin(prompt, b.Close); !ok {
			t.Errorf("Close of an unreachable node did not return within %v", prompt)
		}
	})
	ch := newChannel()
	subscribeWithin := 3 * prompt / 10
	err, ok := returnsWithin(subscribeWithin+prompt, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), subscribeWithin)
		defer cancel()
		sub, err := b.Subscribe(ctx, ch, func([]byte) {}, func(backplane.State, error) {})
		if err == nil {
			_ = sub.Close()
		}
		return err
	})
	switch {
	case !ok:
		t.Errorf("Subscribe on an unreachable node did not return within %v of its context's deadline", prompt)
	case err == nil:
		t.Errorf("Subscribe on an unreachable node succeeded, want an error")
	}
	err, ok = returnsWithin(prompt, func() error { return b.Publish(ctx, ch, []byte("nobody")) })
	switch {
	case !ok:
		t.Errorf("Publish on an unreachable node did not return within %v", prompt)
	case err == nil:
		t.Errorf("Publish on an unreachable node succeeded, want an error")
	}
}
