package natsbackplane

import (
	"context"
	"net/url"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/internal/natsurl"
)

// Scheme is the URL scheme this package registers with backplane.Register.
const Scheme = "nats"

func init() {
	backplane.Register(Scheme, openURL)
}

// ownParams are the query parameters of a nats:// URL besides
// natsurl.Common.
var ownParams = []string{"flush_timeout", "queue_size"}

// openURL opens a Backplane that owns its connection, from
//
//	nats://[user:password@|token@]host[:port][,host[:port]...][?param=value&...]
//
// See the package documentation for the parameters.
func openURL(ctx context.Context, u *url.URL) (backplane.Backplane, error) {
	p, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	nc, err := p.Connect(ctx)
	if err != nil {
		return nil, err
	}
	b, err := New(nc, &opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// parseURL checks a nats:// URL and reads the Options it sets.
func parseURL(u *url.URL) (*natsurl.URL, Options, error) {
	var opts Options
	p, err := natsurl.Parse("natsbackplane", u, ownParams, "nats://[user:password@]host[:port][,host[:port]...][?param=value...]")
	if err != nil {
		return nil, opts, err
	}
	if p.Has("flush_timeout") {
		if opts.FlushTimeout, err = p.Duration("flush_timeout"); err != nil {
			return nil, opts, err
		}
	}
	if p.Has("queue_size") {
		if opts.QueueSize, err = p.PositiveInt("queue_size"); err != nil {
			return nil, opts, err
		}
	}
	return p, opts, nil
}
