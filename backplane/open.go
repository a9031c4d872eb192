package backplane

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Opener makes a Backplane from a URL whose scheme it was registered for. It
// must honour ctx, and must not keep ctx after it returns. Errors name the
// adapter package ("redisbackplane: ...") and must not reveal the password
// of u.
type Opener func(ctx context.Context, u *url.URL) (Backplane, error)

// registry maps URL schemes to openers. It is the only global state of the
// package.
var registry struct {
	mu      sync.RWMutex
	openers map[string]Opener
}

// Register makes open the Opener for URLs with the given scheme. Adapter
// packages call it from init, so that importing an adapter makes its scheme
// available to Open.
//
// A scheme is lower case (Open lower-cases the scheme of the URL it parses)
// and follows RFC 3986: a letter, then letters, digits, '+', '-' or '.'.
// Register panics if scheme is empty or malformed, if open is nil, or if the
// scheme is already registered: these are programming errors, found at
// start-up.
func Register(scheme string, open Opener) {
	if err := checkScheme(scheme); err != nil {
		panic(err)
	}
	if open == nil {
		panic(fmt.Sprintf("backplane: Register(%q) with a nil Opener", scheme))
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, dup := registry.openers[scheme]; dup {
		panic(fmt.Sprintf("backplane: Register called twice for scheme %q", scheme))
	}
	if registry.openers == nil {
		registry.openers = make(map[string]Opener)
	}
	registry.openers[scheme] = open
}

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	schemes := make([]string, 0, len(registry.openers))
	for s := range registry.openers {
		schemes = append(schemes, s)
	}
	slices.Sort(schemes)
	return schemes
}

// Open makes a Backplane from a URL such as "mem://tests",
// "redis://cache:6379/0" or "nats://nats:4222", using the Opener registered
// for the URL's scheme. The adapter package must be imported (often for its
// side effect only: import _ ".../membackplane") for its scheme to be known.
//
// A URL that does not parse, has no scheme, or has a scheme nobody
// registered is an error that names the scheme and the URL (with any
// password masked) and lists the known schemes. Other errors come from the
// adapter's Opener.
func Open(ctx context.Context, rawURL string) (Backplane, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, password included
		}
		return nil, fmt.Errorf("backplane: cannot parse URL %q: %v (known: %s)", redact(rawURL), err, known())
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("backplane: no scheme in URL %q (known: %s)", u.Redacted(), known())
	}
	registry.mu.RLock()
	open := registry.openers[u.Scheme]
	registry.mu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("backplane: unknown scheme %q in %q (known: %s)", u.Scheme, u.Redacted(), known())
	}
	return open(ctx, u)
}

// known lists the registered schemes for an error message.
func known() string {
	s := Schemes()
	if len(s) == 0 {
		return "none; import an adapter package such as backplane/membackplane"
	}
	return strings.Join(s, ", ")
}

func checkScheme(scheme string) error {
	if scheme == "" {
		return errors.New("backplane: Register with an empty scheme")
	}
	for i, c := range []byte(scheme) {
		ok := 'a' <= c && c <= 'z' ||
			i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')
		if !ok {
			return fmt.Errorf("backplane: Register with malformed scheme %q (want a lower-case letter, then lower-case letters, digits, '+', '-' or '.')", scheme)
		}
	}
	return nil
}

// redact masks the password of a URL that url.Parse rejected, the way
// url.URL.Redacted does for one it accepts. It errs on the side of masking.
func redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return raw
	}
	return raw[:i+3] + rest[:colon+1] + "xxxxx" + rest[at:]
}
