// Package rabbittest holds helpers for the tests of strata's RabbitMQ
// adapter (backplane/rabbitbackplane): the address of the test server,
// skipped or failed on when it is not there, a dialer that names its
// connections and exposes their sockets, closing a connection from the
// server side with rabbitmqctl, and deleting the exchanges a test made.
package rabbittest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/internal/natstest"
)

// DefaultURL is the RabbitMQ server the tests use when STRATA_AMQP_URL is
// not set.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// URL returns the URL of the RabbitMQ server the tests talk to:
// $STRATA_AMQP_URL, or DefaultURL. When nothing accepts TCP connections
// there, the test fails if $CI is "true" and is skipped otherwise.
func URL(tb testing.TB) string {
	tb.Helper()
	raw := os.Getenv("STRATA_AMQP_URL")
	if raw == "" {
		raw = DefaultURL
	}
	port := "5672"
	if strings.HasPrefix(raw, "amqps:") {
		port = "5671"
	}
	natstest.Require(tb, "RabbitMQ", raw, natstest.HostPort(raw, port))
	return raw
}

// Dialer dials connections with a client-provided name and keeps their
// sockets, so that a test can cut them (Cut) and refuse new ones until
// Restore.
type Dialer struct {
	URL  string
	Name string // connection_name shown by the server

	mu      sync.Mutex
	refused bool
	socks   []net.Conn
}

// Dial connects, honouring ctx, unless the Dialer is cut.
func (d *Dialer) Dial(ctx context.Context) (*amqp.Connection, error) {
	d.mu.Lock()
	refused := d.refused
	d.mu.Unlock()
	if refused {
		return nil, fmt.Errorf("rabbittest: dial refused (cut by the test)")
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(d.Name)
	conn, err := amqp.DialConfig(d.URL, amqp.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			deadline := time.Now().Add(10 * time.Second)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			_ = c.SetDeadline(deadline)
			d.mu.Lock()
			d.socks = append(d.socks, c)
			d.mu.Unlock()
			return c, nil
		},
	})
	return conn, err
}

// Refuse makes later dials fail until Restore.
func (d *Dialer) Refuse() {
	d.mu.Lock()
	d.refused = true
	d.mu.Unlock()
}

// Restore lets dials through again.
func (d *Dialer) Restore() {
	d.mu.Lock()
	d.refused = false
	d.mu.Unlock()
}

// Cut refuses later dials and closes the sockets of the connections made so
// far, from the client side (as a network failure would).
func (d *Dialer) Cut() {
	d.mu.Lock()
	d.refused = true
	socks := d.socks
	d.socks = nil
	d.mu.Unlock()
	for _, c := range socks {
		_ = c.Close()
	}
}

// CloseConnection closes, from the server side, every connection whose
// client-provided name is name, with rabbitmqctl (which needs to run as
// root or the rabbitmq user, on the server's machine). It waits until the
// server lists such a connection (up to 10 s) and returns how many it
// closed.
func CloseConnection(ctx context.Context, name string) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		names, err := connectionsNamed(ctx, name)
		if err != nil {
			return 0, err
		}
		if len(names) > 0 {
			for _, n := range names {
				out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "close_connection", n, "closed by a strata test").CombinedOutput()
				if err != nil {
					return 0, fmt.Errorf("rabbitmqctl close_connection %q: %v: %s", n, err, out)
				}
			}
			return len(names), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("rabbittest: no connection named %q on the server", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Holdings returns, with rabbitmqctl, how many channels the connection
// whose client-provided name is name has open on the server, and how many
// queues it owns (exclusive queues live as long as their connection, so one
// its channels left behind shows here). A connection the server does not
// list has none.
func Holdings(ctx context.Context, name string) (channels, queues int, err error) {
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_connections", "pid", "channels", "client_properties").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("rabbitmqctl list_connections: %v", err)
	}
	var pids []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) < 3 || !namedIn(f[2], name) {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, 0, fmt.Errorf("rabbitmqctl list_connections: channels %q: %v", f[1], err)
		}
		channels += n
		pids = append(pids, f[0])
	}
	if err := sc.Err(); err != nil || len(pids) == 0 {
		return channels, 0, err
	}
	out, err = exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_queues", "owner_pid").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("rabbitmqctl list_queues: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		if slices.Contains(pids, strings.TrimSpace(line)) {
			queues++
		}
	}
	return channels, queues, nil
}

// namedIn reports whether props, the client_properties rabbitmqctl lists
// for a connection, name it name. Their format differs between server
// versions.
func namedIn(props, name string) bool {
	return strings.Contains(props, fmt.Sprintf(`"connection_name","%s"`, name)) ||
		strings.Contains(props, fmt.Sprintf(`"connection_name",longstr,"%s"`, name))
}

// connectionsNamed returns the Erlang process ids (what close_connection
// takes) of the connections whose connection_name is name.
func connectionsNamed(ctx context.Context, name string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_connections", "pid", "client_properties").Output()
	if err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_connections: %v", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if pid, props, ok := strings.Cut(sc.Text(), "\t"); ok && namedIn(props, name) {
			names = append(names, pid)
		}
	}
	return names, sc.Err()
}

// HaveCtl reports whether rabbitmqctl can be run here.
func HaveCtl() bool {
	_, err := exec.LookPath("rabbitmqctl")
	return err == nil
}

// DeleteExchanges deletes the named exchanges (bindings and all), on a
// connection of its own; errors are reported to tb.
func DeleteExchanges(tb testing.TB, rawURL string, names []string) {
	tb.Helper()
	if len(names) == 0 {
		return
	}
	conn, err := amqp.DialConfig(rawURL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		tb.Errorf("rabbittest: delete exchanges: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Errorf("rabbittest: delete exchanges: %v", err)
		return
	}
	defer ch.Close()
	for _, n := range names {
		if err := ch.ExchangeDelete(n, false, false); err != nil {
			tb.Errorf("rabbittest: delete exchange %q: %v", n, err)
			return
		}
	}
}

// Redacted returns rawURL with its password masked.
func Redacted(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
