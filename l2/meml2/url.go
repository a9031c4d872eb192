package meml2

import (
	"context"
	"fmt"
	"net/url"

	"github.com/stratacache/strata/l2"
)

// Scheme is the URL scheme meml2 registers with l2: l2.Open(ctx,
// "mem://NAME") returns a new *Store handle on the shared table NAME, as
// NewShared(NAME, nil) does.
const Scheme = "mem"

func init() {
	l2.Register(Scheme, openURL)
}

// openURL opens "mem://NAME". The URL takes no user, path, query or
// fragment, so that a typo is an error rather than silently ignored.
func openURL(ctx context.Context, u *url.URL) (l2.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("meml2: open: %w", err)
	}
	bad := func(what string) error {
		return fmt.Errorf("meml2: %s in %q: want mem://NAME", what, u.Redacted())
	}
	switch {
	case u.Opaque != "":
		return nil, bad("no //")
	case u.User != nil:
		return nil, bad("unexpected user info")
	case u.Path != "" && u.Path != "/":
		return nil, bad("unexpected path")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, bad("unexpected query")
	case u.Fragment != "":
		return nil, bad("unexpected fragment")
	case u.Host == "":
		return nil, bad("missing name")
	}
	s, err := NewShared(u.Host, nil)
	if err != nil {
		return nil, err
	}
	return s, nil
}
