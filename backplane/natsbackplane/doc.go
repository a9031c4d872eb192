// Package natsbackplane is a strata backplane on core NATS subjects
// (github.com/nats-io/nats.go).
//
// New takes the caller's *nats.Conn, so one connection (with its TLS,
// credentials and instrumentation) can serve the application and the cache:
//
//	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
//	bp, err := natsbackplane.New(nc, nil)
//	c, err := core.New(core.Options{Name: "users", Backplane: bp})
//
// Each channel (backplane.ChannelName of the cache: "strata.v1.users") is a
// NATS subject. Publish is a plain NATS publish and each Subscribe a NATS
// subscription on that subject, so delivery is NATS core's: at most once,
// in order per publisher, to every subscriber connected at the time, the
// publisher's own subscriptions included. Nothing is stored on the server.
//
// Subscribe returns once the server has registered the subscription (it
// flushes the connection within its context), so a message published after
// it returns is delivered. Each subscription has a bounded queue
// (Options.QueueSize) and one goroutine that calls its callbacks, one at a
// time. When the queue is full the client drops messages and the
// subscription reports backplane.Lost.
//
// The Backplane follows the connection with nc.StatusChanged (it does not
// replace the connection's disconnect or reconnect handlers): each
// subscription reports backplane.Disconnected when the client loses the
// server and backplane.Reconnected when it is back (the client re-subscribes
// by itself; Reconnected waits for a round trip on the new connection, so
// the server has the subscription again by then). While the connection is not up, Publish fails at once with an
// error wrapping ErrNotConnected instead of letting the client buffer the
// message in its reconnect buffer, so that core can queue it and replay it.
// The caller decides how the connection reconnects: use
// nats.MaxReconnects(-1) so it never gives up (the client's default stops
// after 60 attempts).
//
// Importing the package registers the "nats" URL scheme for backplane.Open;
// a Backplane opened that way makes its own connection and closes it on
// Close:
//
//	nats://[user:password@|token@]host[:port][,host[:port]...][?param=value&...]
//
// Several comma-separated hosts form the server pool. A user with a
// password is user/password authentication; a user alone is a token.
// Parameters (an unknown one is an error naming it):
//
//	name=NAME            connection name shown by the server (default "strata natsbackplane")
//	connect_timeout=2s   dial and handshake timeout of each attempt
//	reconnect_wait=2s    wait between reconnect attempts
//	max_reconnects=-1    reconnect attempts before giving up; -1 (default): never give up
//	creds=FILE           NATS credentials file (JWT and NKey seed)
//	tls=true             require TLS (also implied by the three below)
//	tls_ca=FILE          CA certificates to verify the server with
//	tls_cert=FILE        client certificate (with tls_key)
//	tls_key=FILE         client key (with tls_cert)
//	queue_size=N         Options.QueueSize
//	flush_timeout=10s    Options.FlushTimeout
//
// The first connection honours the context given to backplane.Open: a
// server that is not there is an error, not a hang.
package natsbackplane
