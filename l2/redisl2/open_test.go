package redisl2_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

func TestOpenOptions(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	ctx := ctxFor(t)
	st, err := l2.Open(ctx, "redis://"+addr+"/0?key_prefix="+prefix+"&dial_timeout=2s&read_timeout=2s&write_timeout=2s&pool_size=4")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	if _, ok := st.(*redisl2.Store); !ok {
		t.Fatalf("Open returned a %T, want *redisl2.Store", st)
	}
	if err := st.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// The prefix applies: a plain client sees the key under it.
	c := redistest.NewClient(t, nil)
	if n := c.Exists(ctx, prefix+"k").Val(); n != 1 {
		t.Errorf("key %q not found in Redis after Set through a store with key_prefix", prefix+"k")
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	addr := redistest.Addr(t)
	for _, tc := range []struct {
		url  string
		want []string // substrings of the error
	}{
		{"redis://" + addr + "/0?bogus=1&key_prefix=x", []string{"redisl2", "bogus"}},
		{"redis://" + addr + "/0?frobnicate=yes&zzz=1", []string{"frobnicate", "zzz"}},
		{"redis://" + addr + "/notanumber", []string{"redisl2", "database"}},
		{"redis://" + addr + "/0?key_prefix=a&key_prefix=b", []string{"key_prefix"}},
		{"redis://" + addr + "/0?dial_timeout=soon", []string{"dial_timeout"}},
		{"redis://user:s3cret@" + redistest.Unreachable + "/0?dial_timeout=1s", []string{"redisl2", "ping"}},
	} {
		start := time.Now()
		st, err := l2.Open(context.Background(), tc.url)
		if err == nil {
			st.Close()
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

// TestOpenHonoursContext: opening an unreachable server stops at ctx's
// deadline, whatever the client's dial timeout.
func TestOpenHonoursContext(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	proxy.SetLatency(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := l2.Open(ctx, "redis://"+proxy.Addr()+"/0")
	if err == nil {
		st.Close()
		t.Fatal("Open through a 2s-latency proxy with a 200ms deadline succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open returned after %v, not soon after its 200ms deadline", d)
	}
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Open error %q does not say the deadline passed", err)
	}
}
