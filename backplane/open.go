package backplane

import (
	"context"
	"net/url"

	"github.com/stratacache/strata/internal/registry"
)

// Opener makes a Backplane from a URL whose scheme it was registered for. It
// must honour ctx, and must not keep ctx after it returns. Errors name the
// adapter package ("redisbackplane: ...") and must not reveal the password
// of u.
type Opener func(ctx context.Context, u *url.URL) (Backplane, error)

// openers maps URL schemes to openers. It is the only global state of the
// package.
var openers = registry.New[Backplane]("backplane", "backplane/membackplane")

// Register makes open the Opener for URLs with the given scheme. Adapter
// packages call it from init, so that importing an adapter makes its scheme
// available to Open.
//
// A scheme is lower case (Open lower-cases the scheme of the URL it parses)
// and follows RFC 3986: a letter, then letters, digits, '+', '-' or '.'.
// Register panics if scheme is empty or malformed, if open is nil, or if the
// scheme is already registered: these are programming errors, found at
// start-up.
func Register(scheme string, open Opener) { openers.Register(scheme, open) }

// Schemes returns the registered URL schemes, sorted.
func Schemes() []string { return openers.Schemes() }

// Open makes a Backplane from a URL such as "mem://tests",
// "redis://cache:6379/0" or "nats://nats:4222", using the Opener registered
// for the URL's scheme. The adapter package must be imported (often for its
// side effect only: import _ ".../membackplane") for its scheme to be known.
//
// A URL that does not parse, has no scheme, or has a scheme nobody
// registered is an error that names the scheme and the URL (with any
// password masked) and lists the known schemes. Other errors come from the
// adapter's Opener.
func Open(ctx context.Context, rawURL string) (Backplane, error) { return openers.Open(ctx, rawURL) }
