// Package rabbitbackplane is a strata backplane on RabbitMQ
// (github.com/rabbitmq/amqp091-go).
//
// The AMQP client does not reconnect by itself, so a Backplane owns its
// connection: New takes a URL (or Options.Dial, a function that makes a
// connection) and reconnects on its own.
//
//	bp, err := rabbitbackplane.New(ctx, "amqp://user:pass@rabbit:5672/", nil)
//	c, err := core.New(core.Options{Name: "users", Backplane: bp})
//
// # Topology
//
// Each channel (backplane.ChannelName of the cache: "strata.v1.users") is a
// fanout exchange of that name, declared by Subscribe and by the first
// Publish on it over each connection. It is not durable (a server restart
// drops it; the Backplane declares it again after reconnecting) and not
// auto-deleted (publishing never fails for want of subscribers; an unused
// exchange costs the server almost nothing, one per cache name).
//
// Each Subscribe has its own AMQP channel and an exclusive, auto-deleted,
// server-named queue bound to the exchange, with x-max-length
// Options.MaxQueueLength (the server drops the oldest messages beyond it),
// consumed with manual acknowledgements and a prefetch of Options.Prefetch,
// so a slow subscriber holds at most that many messages in the client
// (acknowledged together, each time half the prefetch is handled, and at
// most a second after a delivery). The queue goes with the subscription,
// its channel or its connection.
//
// # Delivery
//
// A message published reaches every queue bound at that moment: every
// subscription, the publisher's own included, once, in publish order per
// publisher. Messages are transient. Without Options.Confirm, Publish
// returns once the message is written to the socket (at most once, like
// NATS and Redis pub/sub); with it, Publish waits for the server's
// confirmation (a round trip more per call), which tells that the message
// reached the exchange and its queues, not that subscribers processed it.
// With it, a payload whose Publish returned reaches every queue before one
// published after it by another node, which makes core's delivery
// watermark exact; without it, another node's payload sent just before may
// still be in its socket when a node's own comes back (docs/rabbitmq.md).
// What is published while a subscriber is disconnected is lost for it: its
// queue went with its connection.
//
// # Reconnecting
//
// When the connection closes (a network failure, a server restart, a
// connection closed by an operator), every subscription reports
// backplane.Disconnected, and the Backplane dials again with capped
// exponential backoff and jitter (Options.MinBackoff 100 ms doubling to
// Options.MaxBackoff 5 s). Once connected it declares the exchanges, new
// queues and bindings, resumes consuming, and every subscription reports
// backplane.Reconnected. Meanwhile Publish and Subscribe fail at once with
// an error wrapping ErrNotConnected (core queues the publishes and replays
// them), and Publish fails with ErrBlocked while the server blocks
// publishers (a resource alarm). A subscription whose channel the server
// closes alone (its queue deleted by an operator) makes the Backplane
// reconnect as a whole. Close stops all of it and waits for every
// goroutine.
//
// # URL
//
// Importing the package registers the "amqp" and "amqps" schemes for
// backplane.Open:
//
//	amqp[s]://[user:password@]host[:port][/vhost][?param=value&...]
//
// Parameters of this package:
//
//	connection_name=NAME  Options.ConnectionName (shown by the server)
//	confirm=true          Options.Confirm
//	prefetch=N            Options.Prefetch
//	max_queue_length=N    Options.MaxQueueLength
//	reconnect_min=100ms   Options.MinBackoff
//	reconnect_max=5s      Options.MaxBackoff
//
// and of the AMQP client: heartbeat (seconds), connection_timeout
// (milliseconds, for each dial and handshake), channel_max, auth_mechanism,
// and for amqps certfile, keyfile, cacertfile, server_name_indication. An
// unknown parameter is an error naming it. The first connection honours the
// context given to backplane.Open (or New): an unreachable or silent server
// is an error, not a hang.
package rabbitbackplane
