package redisl2_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/internal/redistest"
)

func TestAnnouncesOn(t *testing.T) {
	s, c, _ := newStore(t)
	newBP := func(client redis.UniversalClient, sharded bool) backplane.Backplane {
		bp, err := redisbackplane.New(client, &redisbackplane.Options{Sharded: sharded})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bp.Close() })
		return bp
	}
	other := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = other.Close() })
	for _, tc := range []struct {
		name string
		bp   backplane.Backplane
		want bool
	}{
		{"same client", newBP(c, false), true},
		{"same address", newBP(redistest.NewClient(t, nil), false), true},
		{"sharded", newBP(c, true), false},
		{"another server", newBP(other, false), false},
		{"another transport", membackplane.NewBus().Connect(nil), false},
		{"none", nil, false},
	} {
		if got := s.AnnouncesOn(tc.bp); got != tc.want {
			t.Errorf("%s: AnnouncesOn = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSetIfNewerAndPublish: one call writes and publishes; a subscriber
// that got the message reads the write; a refused write still publishes;
// the version rule is SetIfNewer's.
func TestSetIfNewerAndPublish(t *testing.T) {
	ctx := ctxFor(t)
	s, _, _ := newStore(t)
	channel := "strata-test-" + redistest.Unique()
	sub := redistest.NewClient(t, nil)
	ps := sub.Subscribe(ctx, channel)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := ps.Channel()
	key := "k-" + redistest.Unique()
	for i, tc := range []struct {
		value   string
		version int64
		stored  bool
	}{{"v2", 2, true}, {"v1", 1, false}, {"v3", 3, true}} {
		stored, err := s.SetIfNewerAndPublish(ctx, key, []byte(tc.value), time.Minute, tc.version, channel, []byte(tc.value))
		if err != nil || stored != tc.stored {
			t.Fatalf("write %d (%s, version %d): stored %v, %v; want %v", i, tc.value, tc.version, stored, err, tc.stored)
		}
		select {
		case m := <-msgs:
			if m.Payload != tc.value {
				t.Fatalf("message %q, want %q", m.Payload, tc.value)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("write %d: no message", i)
		}
		got, found, err := s.Get(ctx, key)
		want := map[bool]string{true: tc.value, false: "v2"}[tc.stored]
		if err != nil || !found || string(got) != want {
			t.Fatalf("after write %d: Get = %q, %v, %v; want %q", i, got, found, err, want)
		}
	}
	if _, err := s.SetIfNewerAndPublish(ctx, key, []byte("x"), 0, 9, channel, nil); err == nil {
		t.Fatal("a zero ttl was accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.SetIfNewerAndPublish(cctx, key, []byte("x"), time.Minute, 9, channel, nil); err == nil {
		t.Fatal("a done context was accepted")
	}
}
