package rabbitbackplane

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/backplane"
)

func init() {
	backplane.Register("amqp", openURL)
	backplane.Register("amqps", openURL)
}

// ownParams are the query parameters this package reads; clientParams are
// those the AMQP client reads (amqp091-go's ParseURI).
var (
	ownParams = []string{
		"confirm", "connection_name", "max_queue_length", "prefetch",
		"reconnect_max", "reconnect_min",
	}
	clientParams = []string{
		"auth_mechanism", "cacertfile", "certfile", "channel_max",
		"connection_timeout", "heartbeat", "keyfile", "server_name_indication",
	}
)

// openURL opens a Backplane from an amqp:// or amqps:// URL.
func openURL(ctx context.Context, u *url.URL) (backplane.Backplane, error) {
	opts, err := parseParams(u)
	if err != nil {
		return nil, err
	}
	b, err := New(ctx, u.String(), &opts)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// parseParams checks the query of u and turns this package's parameters
// into Options.
func parseParams(u *url.URL) (Options, error) {
	var o Options
	bad := func(format string, args ...any) error {
		return fmt.Errorf("rabbitbackplane: bad URL %q: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}
	if u.Opaque != "" || u.Fragment != "" {
		return o, bad("want amqp[s]://[user:password@]host[:port][/vhost][?param=value...]")
	}
	q := u.Query()
	for key := range q {
		if !slices.Contains(ownParams, key) && !slices.Contains(clientParams, key) {
			known := append(slices.Clone(ownParams), clientParams...)
			slices.Sort(known)
			return o, bad("unknown parameter %q (known: %s)", key, strings.Join(known, ", "))
		}
	}
	positive := func(key string) (int, error) {
		n, err := strconv.Atoi(q.Get(key))
		if err != nil || n <= 0 {
			return 0, bad("%s %q is not a positive integer", key, q.Get(key))
		}
		return n, nil
	}
	duration := func(key string) (time.Duration, error) {
		d, err := time.ParseDuration(q.Get(key))
		if err != nil || d <= 0 {
			return 0, bad("%s %q is not a positive duration such as 100ms", key, q.Get(key))
		}
		return d, nil
	}
	var err error
	o.ConnectionName = q.Get("connection_name")
	if q.Has("confirm") {
		if o.Confirm, err = strconv.ParseBool(q.Get("confirm")); err != nil {
			return o, bad("confirm %q is not a boolean", q.Get("confirm"))
		}
	}
	if q.Has("prefetch") {
		if o.Prefetch, err = positive("prefetch"); err != nil {
			return o, err
		}
	}
	if q.Has("max_queue_length") {
		if o.MaxQueueLength, err = positive("max_queue_length"); err != nil {
			return o, err
		}
	}
	if q.Has("reconnect_min") {
		if o.MinBackoff, err = duration("reconnect_min"); err != nil {
			return o, err
		}
	}
	if q.Has("reconnect_max") {
		if o.MaxBackoff, err = duration("reconnect_max"); err != nil {
			return o, err
		}
	}
	return o, nil
}

// urlDialer returns a dial function for an amqp:// or amqps:// URL that
// honours its context (dial and handshake) and names the connection.
func urlDialer(rawURL, name string) (func(context.Context) (*amqp.Connection, error), error) {
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rabbitbackplane: bad URL %s: %v", redactURL(rawURL), err)
	}
	handshake := DefaultDialTimeout
	if uri.ConnectionTimeout > 0 {
		handshake = time.Duration(uri.ConnectionTimeout) * time.Millisecond
	}
	return func(ctx context.Context) (*amqp.Connection, error) {
		// ctx, or the handshake timeout, ends the attempt: closing the
		// socket ends a handshake in progress.
		ctx, cancel := context.WithTimeout(ctx, handshake)
		defer cancel()
		props := amqp.NewConnectionProperties()
		props.SetClientConnectionName(name)
		var mu sync.Mutex
		var raw net.Conn
		cfg := amqp.Config{
			Properties: props,
			Dial: func(network, addr string) (net.Conn, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				// A backstop, should the socket outlive ctx; the client
				// clears it after the handshake.
				deadline, _ := ctx.Deadline()
				if err := c.SetDeadline(deadline.Add(time.Second)); err != nil {
					_ = c.Close()
					return nil, err
				}
				mu.Lock()
				raw = c
				mu.Unlock()
				return c, nil
			},
		}
		stop := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if raw != nil {
				_ = raw.Close()
			}
		})
		conn, err := amqp.DialConfig(rawURL, cfg)
		if !stop() || ctx.Err() != nil {
			if conn != nil {
				_ = conn.Close()
			}
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return conn, err
	}, nil
}

// redactURL quotes a URL for an error message with its password masked.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return strconv.Quote(u.Redacted())
	}
	return "(unparsable URL)"
}
