// Package registry maps URL schemes to the openers of adapters: the one
// implementation behind l2.Open and backplane.Open.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Registry maps URL schemes to openers of T. It is safe for concurrent use.
type Registry[T any] struct {
	pkg     string // prefix of errors and panics: "l2", "backplane"
	example string // an adapter package to suggest when none is registered
	mu      sync.RWMutex
	openers map[string]func(context.Context, *url.URL) (T, error)
}

// New returns an empty Registry whose errors start with pkg and suggest
// importing the adapter package example when nothing is registered.
func New[T any](pkg, example string) *Registry[T] {
	return &Registry[T]{pkg: pkg, example: example, openers: make(map[string]func(context.Context, *url.URL) (T, error))}
}

// Register makes open the opener of scheme. It panics, like
// database/sql.Register, when scheme is not a lower-case RFC 3986 scheme,
// when open is nil, or when scheme is already registered: programming
// errors found the first time the program starts.
func (r *Registry[T]) Register(scheme string, open func(context.Context, *url.URL) (T, error)) {
	if !validScheme(scheme) {
		panic(fmt.Sprintf("%s: Register of invalid scheme %q (want a lower-case letter, then lower-case letters, digits, '+', '-' or '.')", r.pkg, scheme))
	}
	if open == nil {
		panic(fmt.Sprintf("%s: Register of scheme %q with a nil Opener", r.pkg, scheme))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.openers[scheme]; dup {
		panic(fmt.Sprintf("%s: Register called twice for scheme %q", r.pkg, scheme))
	}
	r.openers[scheme] = open
}

// Schemes returns the registered schemes, sorted, in a new slice.
func (r *Registry[T]) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := make([]string, 0, len(r.openers))
	for scheme := range r.openers {
		s = append(s, scheme)
	}
	slices.Sort(s)
	return s
}

// Open parses rawURL and calls the opener of its scheme. An unparsable URL,
// a URL without a scheme, or a scheme nobody registered is an error that
// names the URL with any password masked and lists the known schemes;
// errors of the opener are returned as they are.
func (r *Registry[T]) Open(ctx context.Context, rawURL string) (T, error) {
	var zero T
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, password included
		}
		return zero, fmt.Errorf("%s: bad URL %q: %v (known: %s)", r.pkg, Redact(rawURL), err, r.known())
	}
	if u.Scheme == "" {
		return zero, fmt.Errorf("%s: missing scheme in %q (known: %s)", r.pkg, u.Redacted(), r.known())
	}
	r.mu.RLock()
	open := r.openers[u.Scheme]
	r.mu.RUnlock()
	if open == nil {
		return zero, fmt.Errorf("%s: unknown scheme %q in %q (known: %s)", r.pkg, u.Scheme, u.Redacted(), r.known())
	}
	return open(ctx, u)
}

// known lists the registered schemes for an error message.
func (r *Registry[T]) known() string {
	s := r.Schemes()
	if len(s) == 0 {
		return "none; import an adapter package such as " + r.example
	}
	return strings.Join(s, ", ")
}

// validScheme reports whether s is a non-empty, lower-case RFC 3986 scheme.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// Redact masks the password of a URL that url.Parse rejected, the way
// url.URL.Redacted does for one it accepts: "redis://u:secret@h%" becomes
// "redis://u:xxxxx@h%". It errs on the side of masking: everything between
// the first ':' after the scheme and the last '@' is hidden, so a password
// holding '/', '?' or '@' does not leak.
func Redact(raw string) string {
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
