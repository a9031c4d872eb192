// Package membackplane is the in-process reference backplane.Backplane: nodes
// attached to one Bus deliver every payload published on a channel to every
// subscription of that channel on the Bus, in publish order, without a
// server. Use it in tests, single-binary demos and to check core against a
// transport whose faults a test controls.
//
// A node comes from New (alone on a private Bus), from (*Bus).Connect (one of
// several nodes on a Bus the test holds), or from backplane.Open with a URL
// mem://NAME, which this package registers: every node opened with the same
// NAME in one process is on one Bus, so several caches in one test act as
// several nodes of a cluster.
//
// Delivery is asynchronous. Each subscription has one goroutine that calls its
// callbacks, fed by a bounded queue (Options.QueueSize); when the queue is
// full a payload is dropped and the subscription's StateFunc gets
// backplane.Lost, so a slow subscriber never blocks a publisher and never
// makes the queue grow without bound. A node receives its own publications
// too, like a Redis or NATS connection that subscribes to what it publishes;
// core ignores its own messages by their source id.
//
// Faults are switched at run time, per node: SetFault makes Publish fail,
// delays delivery to the node, or makes it silently miss incoming payloads;
// Disconnect and Reconnect simulate a dropped connection, reported to the
// node's subscriptions as backplane.Disconnected and backplane.Reconnected.
// Stats counts what a node published, delivered and dropped.
package membackplane
