package rediscall

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestFor(t *testing.T) {
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	timed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer timed.Close()
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	defer cluster.Close()
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
		want bool
	}{{"plain", plain, false}, {"ContextTimeoutEnabled", timed, true}, {"cluster ContextTimeoutEnabled", cluster, true}} {
		if got := For(tc.c).deadlines; got != tc.want {
			t.Errorf("For(%s).deadlines = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestInline(t *testing.T) {
	deadline, cancel1 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel1()
	cancellable, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for _, tc := range []struct {
		name      string
		deadlines bool
		ctx       context.Context
		want      bool
	}{
		{"background", false, context.Background(), true},
		{"deadline, client ignores it", false, deadline, false},
		{"deadline, client applies it", true, deadline, true},
		{"cancel only, client applies deadlines", true, cancellable, false},
	} {
		if got := (Runner{deadlines: tc.deadlines}).Inline(tc.ctx); got != tc.want {
			t.Errorf("%s: Inline = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDoReturnsAtCancel: a call that is not inline returns ctx.Err() as
// soon as ctx is done, while f goes on.
func TestDoReturnsAtCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	finished := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := Do(Runner{}, ctx, func(context.Context) (int, error) {
		defer close(finished)
		<-release
		return 1, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	close(release)
	<-finished
}

func TestDoInlineRunsOnCaller(t *testing.T) {
	ran := false
	v, err := Do(Runner{}, context.Background(), func(context.Context) (int, error) { ran = true; return 7, nil })
	if err != nil || v != 7 || !ran { // ran is read without sync: the race detector checks it ran here
		t.Fatalf("Do = %d, %v (ran %v), want 7, nil on the caller's goroutine", v, err, ran)
	}
}
