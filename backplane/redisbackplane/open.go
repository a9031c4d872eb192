package redisbackplane

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/internal/rediscall"
)

func init() {
	backplane.Register("redis", open)
	backplane.Register("rediss", open)
}

// open is the backplane.Opener of the "redis" and "rediss" schemes:
//
//	redis://[[user]:password@]host[:port][/db][?option=value&...]
//	rediss://...   (TLS)
//
// The URL is read by redis.ParseURL, so every query option go-redis knows
// works (dial_timeout, read_timeout, write_timeout, pool_size, max_retries,
// client_name, protocol, skip_verify for rediss, ...; durations as "500ms" or
// whole seconds). The backplane's own options are sharded (true or false:
// Options.Sharded) and health_check_interval (a duration:
// Options.HealthCheckInterval). Any other query parameter is an error naming
// it. The backplane owns its client and closes it on Close. open checks the
// server with a PING, bounded by ctx and the client's timeouts, and fails
// when it does not answer.
func open(ctx context.Context, u *url.URL) (backplane.Backplane, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("redisbackplane: URL %q: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}
	q := u.Query()
	var opts Options
	for _, name := range []string{"sharded", "health_check_interval"} {
		vs, ok := q[name]
		if !ok {
			continue
		}
		if len(vs) > 1 {
			return nil, bad("%s given %d times", name, len(vs))
		}
		var err error
		switch name {
		case "sharded":
			opts.Sharded, err = strconv.ParseBool(vs[0])
		case "health_check_interval":
			opts.HealthCheckInterval, err = time.ParseDuration(vs[0])
			if err == nil && opts.HealthCheckInterval <= 0 {
				err = fmt.Errorf("must be positive")
			}
		}
		if err != nil {
			return nil, bad("%s=%q: %v", name, vs[0], err)
		}
		q.Del(name)
	}
	rest := *u
	rest.RawQuery = q.Encode()
	ropts, err := redis.ParseURL(rest.String())
	if err != nil {
		return nil, bad("%v (own options: sharded, health_check_interval)", err)
	}
	// The client is the backplane's own: it applies contexts' deadlines itself, so
	// calls with a deadline run without a goroutine each (rediscall.Do).
	ropts.ContextTimeoutEnabled = true
	client := redis.NewClient(ropts)
	_, err = rediscall.Do(rediscall.For(client), ctx, func(ctx context.Context) (string, error) { return client.Ping(ctx).Result() })
	if err != nil {
		_ = client.Close()
		return nil, wrap(ctx, fmt.Sprintf("open %q: ping", u.Redacted()), err)
	}
	b, err := New(client, &opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}
