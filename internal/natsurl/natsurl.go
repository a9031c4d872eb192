// Package natsurl reads the nats:// URLs of strata's NATS adapters
// (natsbackplane, natskvl2) and makes their connections: the server list,
// credentials, TLS and reconnect parameters they share, each adapter adding
// parameters of its own.
package natsurl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Common are the query parameters every adapter's URL takes.
var Common = []string{
	"connect_timeout", "creds", "max_reconnects", "name", "reconnect_wait",
	"tls", "tls_ca", "tls_cert", "tls_key",
}

// URL is a checked nats:// URL.
type URL struct {
	pkg string
	u   *url.URL
	q   url.Values
	// Servers are the server URLs, nats:// or tls://, port 4222 by default.
	Servers []string
	// Options are the client options the URL asks for, after strata's
	// defaults: reconnect forever, name "strata PKG", and a PING every
	// 10 s with 2 outstanding at most (a silent, half-open connection is
	// noticed within about 30 s instead of the client's minutes).
	Options []nats.Option
}

// Parse checks u, a URL of the form
//
//	nats://[user:password@|token@]host[:port][,host[:port]...][?param=value&...]
//
// for the adapter pkg ("natsbackplane"), which takes the Common parameters
// and its own. Errors start with pkg and name the bad value; usage is the
// URL form the error for a malformed URL shows.
func Parse(pkg string, u *url.URL, own []string, usage string) (*URL, error) {
	p := &URL{pkg: pkg, u: u, q: u.Query()}
	if u.Opaque != "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, p.Bad("want %s", usage)
	}
	known := slices.Sorted(slices.Values(append(slices.Clone(Common), own...)))
	for key := range p.q {
		if !slices.Contains(known, key) {
			return nil, p.Bad("unknown parameter %q (known: %s)", key, strings.Join(known, ", "))
		}
	}
	useTLS := false
	if p.q.Has("tls") {
		var err error
		if useTLS, err = strconv.ParseBool(p.Get("tls")); err != nil {
			return nil, p.Bad("tls %q is not a boolean", p.Get("tls"))
		}
	}
	if p.q.Has("tls_ca") || p.q.Has("tls_cert") || p.q.Has("tls_key") {
		useTLS = true
	}
	scheme := "nats"
	if useTLS {
		scheme = "tls"
	}
	for h := range strings.SplitSeq(u.Host, ",") {
		if h == "" {
			return nil, p.Bad("empty host in the server list")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "4222")
		}
		p.Servers = append(p.Servers, scheme+"://"+h)
	}
	if err := p.clientOptions(useTLS); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *URL) clientOptions(useTLS bool) error {
	add := func(o ...nats.Option) { p.Options = append(p.Options, o...) }
	add(nats.MaxReconnects(-1), nats.Name("strata "+p.pkg), nats.PingInterval(10*time.Second), nats.MaxPingsOutstanding(2))
	if u := p.u.User; u != nil {
		if pw, ok := u.Password(); ok {
			add(nats.UserInfo(u.Username(), pw))
		} else {
			add(nats.Token(u.Username()))
		}
	}
	if p.q.Has("name") {
		add(nats.Name(p.Get("name")))
	}
	for _, d := range []struct {
		key string
		opt func(time.Duration) nats.Option
	}{{"connect_timeout", nats.Timeout}, {"reconnect_wait", nats.ReconnectWait}} {
		if p.q.Has(d.key) {
			v, err := p.Duration(d.key)
			if err != nil {
				return err
			}
			add(d.opt(v))
		}
	}
	if p.q.Has("max_reconnects") {
		n, err := strconv.Atoi(p.Get("max_reconnects"))
		if err != nil || n < -1 {
			return p.Bad("max_reconnects %q is not an integer >= -1 (-1: forever)", p.Get("max_reconnects"))
		}
		add(nats.MaxReconnects(n))
	}
	if p.q.Has("creds") {
		add(nats.UserCredentials(p.Get("creds")))
	}
	if !useTLS {
		return nil
	}
	add(nats.Secure())
	if p.q.Has("tls_ca") {
		add(nats.RootCAs(p.Get("tls_ca")))
	}
	if p.q.Has("tls_cert") != p.q.Has("tls_key") {
		return p.Bad("tls_cert and tls_key go together")
	}
	if p.q.Has("tls_cert") {
		add(nats.ClientCert(p.Get("tls_cert"), p.Get("tls_key")))
	}
	return nil
}

// Has reports whether the URL sets the query parameter key.
func (p *URL) Has(key string) bool { return p.q.Has(key) }

// Get returns the value of the query parameter key ("" if unset).
func (p *URL) Get(key string) string { return p.q.Get(key) }

// Bad returns an error about the URL: "PKG: bad URL "...": " and the text.
func (p *URL) Bad(format string, args ...any) error {
	return fmt.Errorf("%s: bad URL %q: %s", p.pkg, p.u.Redacted(), fmt.Sprintf(format, args...))
}

// Duration returns the query parameter key as a positive duration.
func (p *URL) Duration(key string) (time.Duration, error) {
	d, err := time.ParseDuration(p.Get(key))
	if err != nil || d <= 0 {
		return 0, p.Bad("%s %q is not a positive duration such as 2s", key, p.Get(key))
	}
	return d, nil
}

// PositiveInt returns the query parameter key as an integer above zero.
func (p *URL) PositiveInt(key string) (int, error) {
	n, err := strconv.Atoi(p.Get(key))
	if err != nil || n <= 0 {
		return 0, p.Bad("%s %q is not a positive integer", key, p.Get(key))
	}
	return n, nil
}

// Connect connects to the URL's servers. ctx bounds the first connection
// (the dial and the handshake after it) and nothing after it: reconnects
// dial without it. Errors start with the package name and name the URL.
func (p *URL) Connect(ctx context.Context) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: open %q: %w", p.pkg, p.u.Redacted(), err)
	}
	d := &ctxDialer{ctx: ctx}
	d.d.Timeout = nats.GetDefaultOptions().Timeout
	opts := append(slices.Clone(p.Options), nats.SetCustomDialer(d), func(o *nats.Options) error {
		d.d.Timeout = o.Timeout // as set by ?connect_timeout=, before the cut below
		return nil
	})
	if deadline, ok := ctx.Deadline(); ok {
		// The handshake after the dial (INFO, TLS, CONNECT) waits this long.
		opts = append(opts, func(o *nats.Options) error {
			o.Timeout = min(o.Timeout, max(time.Until(deadline), time.Millisecond))
			return nil
		})
	}
	nc, err := nats.Connect(strings.Join(p.Servers, ","), opts...)
	d.release() // reconnects dial without the caller's ctx
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return nil, fmt.Errorf("%s: connect to %q: %w", p.pkg, p.u.Redacted(), err)
	}
	return nc, nil
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
