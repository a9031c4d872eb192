package redisl2

import (
	"context"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/rediscall"
	"github.com/stratacache/strata/l2"
)

func init() {
	l2.Register("redis", open)
	l2.Register("rediss", open)
}

// open is the l2.Opener of the "redis" and "rediss" schemes:
//
//	redis://[[user]:password@]host[:port][/db][?option=value&...]
//	rediss://...   (TLS)
//
// The URL is read by redis.ParseURL, so every query option go-redis knows
// works (dial_timeout, read_timeout, write_timeout, pool_size, max_retries,
// client_name, protocol, skip_verify for rediss, ...; durations as "500ms" or
// whole seconds). The Store's own option is key_prefix (Options.KeyPrefix).
// Any other query parameter is an error naming it. The store owns its client
// and closes it on Close. open checks the server with a PING, bounded by
// ctx and the client's timeouts, and fails when it does not answer.
func open(ctx context.Context, u *url.URL) (l2.Store, error) {
	q := u.Query()
	opts := &Options{KeyPrefix: q.Get("key_prefix")}
	if len(q["key_prefix"]) > 1 {
		return nil, fmt.Errorf("redisl2: URL %q: key_prefix given %d times", u.Redacted(), len(q["key_prefix"]))
	}
	q.Del("key_prefix")
	rest := *u
	rest.RawQuery = q.Encode()
	ropts, err := redis.ParseURL(rest.String())
	if err != nil {
		return nil, fmt.Errorf("redisl2: URL %q: %v (own options: key_prefix)", u.Redacted(), err)
	}
	// The client is the store's own: it applies contexts' deadlines itself, so
	// calls with a deadline run without a goroutine each (rediscall.Do).
	ropts.ContextTimeoutEnabled = true
	client := redis.NewClient(ropts)
	_, err = rediscall.Do(rediscall.For(client), ctx, func(ctx context.Context) (string, error) { return client.Ping(ctx).Result() })
	if err != nil {
		_ = client.Close()
		return nil, wrap(ctx, fmt.Sprintf("open %q: ping", u.Redacted()), err)
	}
	s, _ := New(client, opts)
	s.owned = true
	return s, nil
}
