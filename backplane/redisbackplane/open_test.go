package redisbackplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/internal/redistest"
)

func TestOpenOptions(t *testing.T) {
	addr := redistest.Addr(t)
	for _, q := range []string{"", "?sharded=true", "?sharded=false&health_check_interval=250ms&dial_timeout=2s&pool_size=2"} {
		b, err := backplane.Open(ctxFor(t), "redis://"+addr+"/0"+q)
		if err != nil {
			t.Fatalf("Open(%q): %v", q, err)
		}
		if _, ok := b.(*redisbackplane.Backplane); !ok {
			t.Fatalf("Open returned a %T, want *redisbackplane.Backplane", b)
		}
		ch := backplane.ChannelName("open-" + redistest.Unique())
		r := subscribe(t, b, ch)
		publishUntil(t, b, ch, r, "self")
		for range 2 {
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	addr := redistest.Addr(t)
	for _, tc := range []struct {
		url  string
		want []string // substrings of the error
	}{
		{"redis://" + addr + "/0?bogus=1&sharded=true", []string{"redisbackplane", "bogus"}},
		{"redis://" + addr + "/0?sharded=maybe", []string{"sharded"}},
		{"redis://" + addr + "/0?sharded=true&sharded=false", []string{"sharded"}},
		{"redis://" + addr + "/0?health_check_interval=soon", []string{"health_check_interval"}},
		{"redis://" + addr + "/0?health_check_interval=0s", []string{"health_check_interval"}},
		{"redis://" + addr + "/x", []string{"database"}},
		{"redis://:s3cret@" + redistest.Unreachable + "/0?dial_timeout=1s", []string{"redisbackplane", "ping"}},
	} {
		start := time.Now()
		b, err := backplane.Open(context.Background(), tc.url)
		if err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded, want an error", tc.url)
			continue
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Open(%q) took %v to fail", tc.url, d)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) = %q, want it to mention %q", tc.url, err, w)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error reveals the password: %q", tc.url, err)
		}
	}
}

// TestOpenHonoursContext: opening a server that does not answer stops at
// ctx's deadline.
func TestOpenHonoursContext(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	proxy.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	b, err := backplane.Open(ctx, "redis://"+proxy.Addr()+"/0")
	if err == nil {
		b.Close()
		t.Fatal("Open through a black hole with a 200ms deadline succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open returned after %v, not soon after its 200ms deadline", d)
	}
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Open error %q does not say the deadline passed", err)
	}
}
