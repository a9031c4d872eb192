package membackplane_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
)

func open(t *testing.T, url string) *membackplane.Backplane {
	t.Helper()
	b, err := backplane.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	n, ok := b.(*membackplane.Backplane)
	if !ok {
		t.Fatalf("Open(%q) returned a %T", url, b)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func TestMemSchemeIsRegistered(t *testing.T) {
	if !slices.Contains(backplane.Schemes(), membackplane.Scheme) {
		t.Fatalf("Schemes() = %v, want %q in it", backplane.Schemes(), membackplane.Scheme)
	}
}

func TestOpenSameNameSharesABus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		name := fmt.Sprintf("shared-%x", rand.Uint64())
		a, b := open(t, "mem://"+name), open(t, "mem://"+name+"/")
		other := open(t, "mem://"+name+"-other")
		lb, lo := subscribe(t, b, "ch"), subscribe(t, other, "ch")
		publish(t, a, "ch", "hello")
		synctest.Wait()
		lb.want(t, "connected", "msg:hello")
		lo.want(t, "connected")
	})
}

func TestOpenQueueSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		name := fmt.Sprintf("queue-%x", rand.Uint64())
		a, b := open(t, "mem://"+name), open(t, "mem://"+name+"?queue_size=1")
		release := make(chan struct{})
		l := &log{}
		if _, err := b.Subscribe(context.Background(), "ch", func(p []byte) { <-release; l.onMessage(p) }, l.onState); err != nil {
			t.Fatal(err)
		}
		publish(t, a, "ch", "1")
		synctest.Wait()
		publish(t, a, "ch", "2")
		publish(t, a, "ch", "3")
		close(release)
		synctest.Wait()
		l.want(t, "connected", "msg:1", "msg:2", "lost")
	})
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mem://", "want mem://NAME"},
		{"mem:name", "want mem://NAME"},
		{"mem://name/path", "want mem://NAME"},
		{"mem://user:secret@name", "want mem://NAME"},
		{"mem://name#frag", "want mem://NAME"},
		{"mem://name?queue_size=0", `queue_size "0" is not a positive integer`},
		{"mem://name?queue_size=x", `queue_size "x" is not a positive integer`},
		{"mem://name?size=1", `unknown parameter "size" (known: queue_size)`},
	} {
		b, err := backplane.Open(context.Background(), tc.url)
		if err == nil {
			_ = b.Close()
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if !strings.HasPrefix(err.Error(), "membackplane: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want a membackplane error containing %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error reveals the password: %v", tc.url, err)
		}
	}
}

func TestOpenHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := backplane.Open(ctx, "mem://ctx"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled context = %v", err)
	}
}
