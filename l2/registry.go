package l2

import (
	"context"
	"net/url"

	"github.com/stratacache/strata/internal/registry"
)

// Opener opens a Store from a URL whose scheme it was registered for. It
// validates the rest of the URL and returns an error, prefixed with its
// package name, that says what is wrong with it. It must honour ctx.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

// openers is the package's only global state: scheme -> Opener, filled by
// adapters' init functions and read by Open.
var openers = registry.New[Store]("l2", "l2/meml2")

// Register makes open available to Open for URLs with the given scheme
// (lower case, as in "redis"). Adapter packages call it from init, so that
// importing them is enough to use their scheme.
//
// Register panics, like database/sql.Register, when scheme is empty or not a
// valid lower-case URL scheme, when open is nil, or when scheme is already
// registered: all are programming errors found the first time the program
// starts. It is safe for concurrent use.
func Register(scheme string, open Opener) { openers.Register(scheme, open) }

// Schemes returns the registered schemes, sorted. It is safe for concurrent
// use.
func Schemes() []string { return openers.Schemes() }

// Open opens the Store that rawURL names, with the Opener registered for its
// scheme (the adapter package must be imported, usually for its side effect
// only: import _ "github.com/stratacache/strata/l2/meml2"). URL schemes are
// case-insensitive.
//
// An unparsable URL, a URL without a scheme, or a scheme nobody registered is
// an error that names the URL (with any password redacted) and lists the
// known schemes. Errors of the Opener are returned as they are. Open is safe
// for concurrent use.
func Open(ctx context.Context, rawURL string) (Store, error) { return openers.Open(ctx, rawURL) }
