package l2

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Opener opens a Store from a URL whose scheme it was registered for. It
// validates the rest of the URL and returns an error, prefixed with its
// package name, that says what is wrong with it. It must honour ctx.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

// The registry is the package's only global state: scheme -> Opener, filled
// by adapters' init functions and read by Open.
var (
	openersMu sync.RWMutex
	openers   = make(map[string]Opener)
)

// Register makes open available to Open for URLs with the given scheme
// (lower case, as in "redis"). Adapter packages call it from init, so that
// importing them is enough to use their scheme.
//
// Register panics, like database/sql.Register, when scheme is empty or not a
// valid lower-case URL scheme, when open is nil, or when scheme is already
// registered: all are programming errors found the first time the program
// starts. It is safe for concurrent use.
func Register(scheme string, open Opener) {
	if !validScheme(scheme) {
		panic(fmt.Sprintf("l2: Register of invalid scheme %q (want lower-case letters, digits, '+', '-', '.', starting with a letter)", scheme))
	}
	if open == nil {
		panic(fmt.Sprintf("l2: Register of scheme %q with a nil Opener", scheme))
	}
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic(fmt.Sprintf("l2: Register called twice for scheme %q", scheme))
	}
	openers[scheme] = open
}

// Schemes returns the registered schemes, sorted. It is safe for concurrent
// use.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	s := make([]string, 0, len(openers))
	for scheme := range openers {
		s = append(s, scheme)
	}
	slices.Sort(s)
	return s
}

// Open opens the Store that rawURL names, with the Opener registered for its
// scheme (the adapter package must be imported, usually for its side effect
// only: import _ "github.com/stratacache/strata/l2/meml2"). URL schemes are
// case-insensitive.
//
// An unparsable URL, a URL without a scheme, or a scheme nobody registered is
// an error that names the URL (with any password redacted) and lists the
// known schemes. Errors of the Opener are returned as they are. Open is safe
// for concurrent use.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, password included
		}
		return nil, fmt.Errorf("l2: bad URL %q: %v (known: %s)", redactRaw(rawURL), err, knownList())
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("l2: missing scheme in %q (known: %s)", u.Redacted(), knownList())
	}
	openersMu.RLock()
	open := openers[u.Scheme]
	openersMu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("l2: unknown scheme %q in %q (known: %s)", u.Scheme, u.Redacted(), knownList())
	}
	return open(ctx, u)
}

// knownList formats Schemes for an error message.
func knownList() string {
	s := Schemes()
	if len(s) == 0 {
		return "none; import an adapter package such as l2/meml2"
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

// redactRaw hides the password of a URL that url.Parse refused, so that an
// error message never leaks it: "redis://user:secret@h%" becomes
// "redis://user:xxxxx@h%".
func redactRaw(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	start := len(raw) - len(rest)
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return raw
	}
	colon := strings.IndexByte(authority[:at], ':')
	if colon < 0 {
		return raw
	}
	return raw[:start+colon+1] + "xxxxx" + raw[start+at:]
}
