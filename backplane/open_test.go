package backplane

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// stub is a Backplane that does nothing, made by the test openers.
type stub struct{ u *url.URL }

func (stub) Publish(context.Context, string, []byte) error { return nil }
func (stub) Subscribe(context.Context, string, MessageFunc, StateFunc) (Subscription, error) {
	return nil, errors.New("stub")
}
func (stub) Close() error { return nil }

func init() {
	Register("test-open", func(ctx context.Context, u *url.URL) (Backplane, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return stub{u}, nil
	})
	Register("test-fail", func(context.Context, *url.URL) (Backplane, error) {
		return nil, errors.New("testfail: refused")
	})
}

func TestOpen(t *testing.T) {
	b, err := Open(context.Background(), "TEST-OPEN://host:1/path?x=1")
	if err != nil {
		t.Fatal(err)
	}
	u := b.(stub).u
	if u.Scheme != "test-open" || u.Host != "host:1" || u.Path != "/path" || u.Query().Get("x") != "1" {
		t.Errorf("opener got %#v", u)
	}
	if _, err := Open(context.Background(), "test-fail://x"); err == nil || err.Error() != "testfail: refused" {
		t.Errorf("Open returned %v, want the opener's error unchanged", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, "test-open://x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context = %v, want the opener to see ctx", err)
	}
}

func TestOpenErrors(t *testing.T) {
	known := strings.Join(Schemes(), ", ")
	for _, tc := range []struct {
		url, want string
	}{
		{"foo://x", `backplane: unknown scheme "foo" in "foo://x" (known: ` + known + `)`},
		{"redis://user:secret@host:6379/0", `backplane: unknown scheme "redis" in "redis://user:xxxxx@host:6379/0" (known: ` + known + `)`},
		{"", `backplane: missing scheme in "" (known: ` + known + `)`},
		{"localhost/x", `backplane: missing scheme in "localhost/x" (known: ` + known + `)`},
		{"test-open://u:secret@host:port", `backplane: bad URL "test-open://u:xxxxx@host:port": invalid port ":port" after host (known: ` + known + `)`},
		{"::", `backplane: bad URL "::": missing protocol scheme (known: ` + known + `)`},
	} {
		_, err := Open(context.Background(), tc.url)
		if err == nil {
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Open(%q) error\n %s\nwant\n %s", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error reveals the password: %s", tc.url, err)
		}
	}
}

func TestSchemesSorted(t *testing.T) {
	s := Schemes()
	if !slices.IsSorted(s) {
		t.Errorf("Schemes() = %v, not sorted", s)
	}
	for _, want := range []string{"test-fail", "test-open"} {
		if !slices.Contains(s, want) {
			t.Errorf("Schemes() = %v, missing %q", s, want)
		}
	}
	s[0] = "changed"
	if Schemes()[0] == "changed" {
		t.Error("Schemes returned the registry's own slice")
	}
}

func TestRegisterPanics(t *testing.T) {
	open := func(context.Context, *url.URL) (Backplane, error) { return nil, nil }
	for _, tc := range []struct {
		name   string
		scheme string
		open   Opener
		want   string
	}{
		{"empty", "", open, `invalid scheme ""`},
		{"upper case", "Mem", open, `invalid scheme "Mem"`},
		{"digit first", "1mem", open, `invalid scheme "1mem"`},
		{"colon", "mem:", open, `invalid scheme "mem:"`},
		{"nil opener", "test-nil", nil, "nil Opener"},
		{"duplicate", "test-open", open, `twice for scheme "test-open"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatalf("Register(%q) did not panic", tc.scheme)
				}
				msg := ""
				switch r := r.(type) {
				case error:
					msg = r.Error()
				case string:
					msg = r
				}
				if !strings.HasPrefix(msg, "backplane: ") || !strings.Contains(msg, tc.want) {
					t.Errorf("panic %q, want it to contain %q", msg, tc.want)
				}
			}()
			Register(tc.scheme, tc.open)
		})
	}
	if slices.Contains(Schemes(), "test-nil") {
		t.Error("a failed Register left its scheme registered")
	}
}
