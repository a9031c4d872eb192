package natskvl2

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/l2"
)

// Scheme is the URL scheme this package registers with l2.Register. The
// backplane registry has a "nats" scheme of its own (natsbackplane): the two
// registries are separate.
const Scheme = "nats"

func init() {
	l2.Register(Scheme, openURL)
}

// urlParams are the query parameters a nats:// URL may carry.
var urlParams = []string{
	"bucket", "connect_timeout", "creds", "max_reconnects", "max_ttl", "name",
	"reconnect_wait", "replicas", "storage", "timeout", "tls", "tls_ca",
	"tls_cert", "tls_key",
}

// openURL opens a Store that owns its connection, from
//
//	nats://[user:password@|token@]host[:port][,host[:port]...][?bucket=NAME&...]
//
// See the package documentation for the parameters.
func openURL(ctx context.Context, u *url.URL) (l2.Store, error) {
	servers, connOpts, opts, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natskvl2: open %q: %w", u.Redacted(), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmpOr(opts.Timeout, DefaultTimeout))
		defer cancel()
	}
	d := &ctxDialer{ctx: ctx}
	d.d.Timeout = nats.GetDefaultOptions().Timeout
	connOpts = append(connOpts, nats.SetCustomDialer(d), func(o *nats.Options) error {
		d.d.Timeout = o.Timeout // as set by ?connect_timeout=, before the cut below
		return nil
	})
	if deadline, ok := ctx.Deadline(); ok {
		connOpts = append(connOpts, func(o *nats.Options) error {
			o.Timeout = min(o.Timeout, max(time.Until(deadline), time.Millisecond))
			return nil
		})
	}
	nc, err := nats.Connect(strings.Join(servers, ","), connOpts...)
	d.release() // reconnects dial without the caller's ctx
	if err != nil {
		return nil, fmt.Errorf("natskvl2: connect to %q: %w", u.Redacted(), withCtx(ctx, err))
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

// parseURL checks a nats:// URL and turns it into server URLs, client
// options and Options.
func parseURL(u *url.URL) (servers []string, connOpts []nats.Option, opts Options, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("natskvl2: bad URL %q: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}
	if u.Opaque != "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, nil, opts, bad("want nats://[user:password@]host[:port][,host[:port]...][?bucket=NAME&...]")
	}
	q := u.Query()
	for key := range q {
		if !slices.Contains(urlParams, key) {
			return nil, nil, opts, bad("unknown parameter %q (known: %s)", key, strings.Join(urlParams, ", "))
		}
	}
	get := func(key string) string { return q.Get(key) }
	duration := func(key string) (time.Duration, error) {
		d, err := time.ParseDuration(get(key))
		if err != nil || d <= 0 {
			return 0, bad("%s %q is not a positive duration such as 2s", key, get(key))
		}
		return d, nil
	}

	opts.Bucket = get("bucket")
	if q.Has("max_ttl") {
		if opts.MaxTTL, err = duration("max_ttl"); err != nil {
			return nil, nil, opts, err
		}
	}
	if q.Has("timeout") {
		if opts.Timeout, err = duration("timeout"); err != nil {
			return nil, nil, opts, err
		}
	}
	switch get("storage") {
	case "", "file":
	case "memory":
		opts.Storage = jetstream.MemoryStorage
	default:
		return nil, nil, opts, bad("storage %q is not file or memory", get("storage"))
	}
	if q.Has("replicas") {
		n, err := strconv.Atoi(get("replicas"))
		if err != nil || n < 1 {
			return nil, nil, opts, bad("replicas %q is not a positive integer", get("replicas"))
		}
		opts.Replicas = n
	}

	useTLS := false
	if q.Has("tls") {
		if useTLS, err = strconv.ParseBool(get("tls")); err != nil {
			return nil, nil, opts, bad("tls %q is not a boolean", get("tls"))
		}
	}
	if q.Has("tls_ca") || q.Has("tls_cert") || q.Has("tls_key") {
		useTLS = true
	}
	scheme := "nats"
	if useTLS {
		scheme = "tls"
	}
	for h := range strings.SplitSeq(u.Host, ",") {
		if h == "" {
			return nil, nil, opts, bad("empty host in the server list")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "4222")
		}
		servers = append(servers, scheme+"://"+h)
	}

	// Never give up reconnecting; notice a silent, half-open connection
	// within about 30 s (the client default: several minutes).
	connOpts = append(connOpts, nats.MaxReconnects(-1), nats.Name("strata natskvl2"),
		nats.PingInterval(10*time.Second), nats.MaxPingsOutstanding(2))
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			connOpts = append(connOpts, nats.UserInfo(u.User.Username(), pw))
		} else {
			connOpts = append(connOpts, nats.Token(u.User.Username()))
		}
	}
	if q.Has("name") {
		connOpts = append(connOpts, nats.Name(get("name")))
	}
	if q.Has("connect_timeout") {
		d, err := duration("connect_timeout")
		if err != nil {
			return nil, nil, opts, err
		}
		connOpts = append(connOpts, nats.Timeout(d))
	}
	if q.Has("reconnect_wait") {
		d, err := duration("reconnect_wait")
		if err != nil {
			return nil, nil, opts, err
		}
		connOpts = append(connOpts, nats.ReconnectWait(d))
	}
	if q.Has("max_reconnects") {
		n, err := strconv.Atoi(get("max_reconnects"))
		if err != nil || n < -1 {
			return nil, nil, opts, bad("max_reconnects %q is not an integer >= -1 (-1: forever)", get("max_reconnects"))
		}
		connOpts = append(connOpts, nats.MaxReconnects(n))
	}
	if q.Has("creds") {
		connOpts = append(connOpts, nats.UserCredentials(get("creds")))
	}
	if useTLS {
		connOpts = append(connOpts, nats.Secure())
		if q.Has("tls_ca") {
			connOpts = append(connOpts, nats.RootCAs(get("tls_ca")))
		}
		if q.Has("tls_cert") != q.Has("tls_key") {
			return nil, nil, opts, bad("tls_cert and tls_key go together")
		}
		if q.Has("tls_cert") {
			connOpts = append(connOpts, nats.ClientCert(get("tls_cert"), get("tls_key")))
		}
	}
	return servers, connOpts, opts, nil
}

// ctxDialer dials with the context of the Open call while it runs, so that
// the first connection honours it, and without it afterwards (reconnects).
type ctxDialer struct {
	mu  sync.Mutex
	ctx context.Context
	d   net.Dialer
}

func (d *ctxDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	return d.d.DialContext(ctx, network, address)
}

func (d *ctxDialer) release() {
	d.mu.Lock()
	d.ctx = context.Background()
	d.mu.Unlock()
}
