package l2

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/internal/registry"
)

// isolateRegistry gives the test an empty registry and restores the real
// one (with whatever the test binary's imports registered) afterwards.
func isolateRegistry(t *testing.T) {
	t.Helper()
	saved := openers
	openers = registry.New[Store]("l2", "l2/meml2")
	t.Cleanup(func() { openers = saved })
}

// nopStore is a Store that does nothing, for registry tests.
type nopStore struct{ u *url.URL }

func (nopStore) Get(context.Context, string) ([]byte, bool, error)        { return nil, false, nil }
func (nopStore) Set(context.Context, string, []byte, time.Duration) error { return nil }
func (nopStore) Delete(context.Context, string) error                     { return nil }
func (nopStore) Close() error                                             { return nil }

func nopOpener(_ context.Context, u *url.URL) (Store, error) { return nopStore{u}, nil }

func TestOpenDispatchesOnScheme(t *testing.T) {
	isolateRegistry(t)
	var got *url.URL
	Register("test", func(_ context.Context, u *url.URL) (Store, error) {
		got = u
		return nopStore{u}, nil
	})
	Register("other", func(context.Context, *url.URL) (Store, error) {
		t.Fatal("wrong opener called")
		return nil, nil
	})
	s, err := Open(t.Context(), "TEST://user:pw@host:1234/db?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(nopStore); !ok {
		t.Fatalf("Open returned %T", s)
	}
	if got.Scheme != "test" || got.Host != "host:1234" || got.Path != "/db" || got.Query().Get("x") != "1" {
		t.Fatalf("opener got %#v", got)
	}
}

func TestOpenReturnsOpenerError(t *testing.T) {
	isolateRegistry(t)
	boom := errors.New("test: boom")
	Register("test", func(context.Context, *url.URL) (Store, error) { return nil, boom })
	if _, err := Open(t.Context(), "test://x"); err != boom {
		t.Fatalf("Open = %v, want the opener's error as it is", err)
	}
}

func TestOpenErrors(t *testing.T) {
	isolateRegistry(t)
	Register("redis", nopOpener)
	Register("mem", nopOpener)
	for _, tt := range []struct{ url, want string }{
		{"foo://x", `l2: unknown scheme "foo" in "foo://x" (known: mem, redis)`},
		{"", `l2: missing scheme in "" (known: mem, redis)`},
		{"localhost:6379", `l2: unknown scheme "localhost" in "localhost:6379" (known: mem, redis)`},
		{"just-a-name", `l2: missing scheme in "just-a-name" (known: mem, redis)`},
		{"foo://user:secret@host/db", `l2: unknown scheme "foo" in "foo://user:xxxxx@host/db" (known: mem, redis)`},
		{"redis://user:secret@ho st:6379", `l2: bad URL "redis://user:xxxxx@ho st:6379": invalid character " " in host name (known: mem, redis)`},
		{"redis://h:port", `l2: bad URL "redis://h:port": invalid port ":port" after host (known: mem, redis)`},
		{"1redis://h", `l2: bad URL "1redis://h": first path segment in URL cannot contain colon (known: mem, redis)`},
	} {
		s, err := Open(t.Context(), tt.url)
		if err == nil {
			t.Errorf("Open(%q) = %v, want an error", tt.url, s)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Open(%q) error\n got %s\nwant %s", tt.url, err, tt.want)
		}
	}
}

func TestOpenWithNothingRegistered(t *testing.T) {
	isolateRegistry(t)
	_, err := Open(t.Context(), "redis://localhost")
	if err == nil || !strings.Contains(err.Error(), "known: none; import an adapter package") {
		t.Fatalf("Open = %v, want an error saying no scheme is known", err)
	}
}

func TestSchemesSorted(t *testing.T) {
	isolateRegistry(t)
	if s := Schemes(); len(s) != 0 {
		t.Fatalf("Schemes() = %q on an empty registry", s)
	}
	for _, s := range []string{"redis", "mem", "nats", "rediss"} {
		Register(s, nopOpener)
	}
	want := []string{"mem", "nats", "redis", "rediss"}
	got := Schemes()
	if !slices.Equal(got, want) {
		t.Fatalf("Schemes() = %q, want %q", got, want)
	}
	got[0] = "changed"
	if Schemes()[0] != "mem" {
		t.Fatal("Schemes() returned the registry's own slice")
	}
}

func TestRegisterPanics(t *testing.T) {
	isolateRegistry(t)
	Register("dup", nopOpener)
	for _, tt := range []struct {
		name, scheme string
		open         Opener
		want         string
	}{
		{"empty scheme", "", nopOpener, `invalid scheme ""`},
		{"upper case", "Redis", nopOpener, `invalid scheme "Redis"`},
		{"leading digit", "1x", nopOpener, `invalid scheme "1x"`},
		{"with colon", "mem:", nopOpener, `invalid scheme "mem:"`},
		{"nil opener", "nilopener", nil, `nil Opener`},
		{"duplicate", "dup", nopOpener, `twice for scheme "dup"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.HasPrefix(msg, "l2: ") || !strings.Contains(msg, tt.want) {
					t.Fatalf("Register panicked with %v, want a message containing %q", r, tt.want)
				}
			}()
			Register(tt.scheme, tt.open)
		})
	}
	if slices.Contains(Schemes(), "nilopener") {
		t.Fatal("a refused Register left its scheme behind")
	}
}

func TestRegisterAcceptsValidSchemes(t *testing.T) {
	isolateRegistry(t)
	for _, s := range []string{"a", "rediss", "redis+sentinel", "nats-kv", "x.y", "h2"} {
		Register(s, nopOpener)
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	isolateRegistry(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			Register("s"+string(rune('a'+i)), nopOpener)
			for range 100 {
				_ = Schemes()
				_, _ = Open(context.Background(), "sa://x")
			}
		})
	}
	wg.Wait()
	if n := len(Schemes()); n != 8 {
		t.Fatalf("%d schemes registered, want 8", n)
	}
}
