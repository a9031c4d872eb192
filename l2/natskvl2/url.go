package natskvl2

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/internal/natsurl"
	"github.com/stratacache/strata/l2"
)

// Scheme is the URL scheme this package registers with l2.Register. The
// backplane registry has a "nats" scheme of its own (natsbackplane): the two
// registries are separate.
const Scheme = "nats"

func init() {
	l2.Register(Scheme, openURL)
}

// ownParams are the query parameters of a nats:// URL besides
// natsurl.Common.
var ownParams = []string{"bucket", "max_ttl", "replicas", "storage", "timeout"}

// openURL opens a Store that owns its connection, from
//
//	nats://[user:password@|token@]host[:port][,host[:port]...][?bucket=NAME&...]
//
// See the package documentation for the parameters.
func openURL(ctx context.Context, u *url.URL) (l2.Store, error) {
	p, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmpOr(opts.Timeout, DefaultTimeout))
		defer cancel()
	}
	nc, err := p.Connect(ctx)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natskvl2: %w", err)
	}
	s, err := New(ctx, js, &opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// parseURL checks a nats:// URL and reads the Options it sets.
func parseURL(u *url.URL) (*natsurl.URL, Options, error) {
	var opts Options
	p, err := natsurl.Parse("natskvl2", u, ownParams, "nats://[user:password@]host[:port][,host[:port]...][?bucket=NAME&...]")
	if err != nil {
		return nil, opts, err
	}
	opts.Bucket = p.Get("bucket")
	for _, d := range []struct {
		key string
		to  *time.Duration
	}{{"max_ttl", &opts.MaxTTL}, {"timeout", &opts.Timeout}} {
		if p.Has(d.key) {
			if *d.to, err = p.Duration(d.key); err != nil {
				return nil, opts, err
			}
		}
	}
	switch p.Get("storage") {
	case "", "file":
	case "memory":
		opts.Storage = jetstream.MemoryStorage
	default:
		return nil, opts, p.Bad("storage %q is not file or memory", p.Get("storage"))
	}
	if p.Has("replicas") {
		if opts.Replicas, err = p.PositiveInt("replicas"); err != nil {
			return nil, opts, err
		}
	}
	return p, opts, nil
}
