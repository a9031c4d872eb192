// Package backplanetest is the conformance suite every backplane.Backplane
// adapter must pass. An adapter's test calls Run with a Harness that makes
// nodes connected to one transport (a real server for real adapters):
//
//	func TestConformance(t *testing.T) {
//		backplanetest.Run(t, harness{addr: addr})
//	}
//
// The suite checks what core relies on: Subscribe returns only once live and
// reports backplane.Connected; every other node receives each payload exactly
// once, in publish order, byte for byte (empty, binary and 64 KiB payloads,
// buffers reused by the publisher); channels do not cross; Subscription.Close
// and Backplane.Close stop callbacks; callbacks of one subscription are never
// concurrent; done contexts and use after Close are errors; Close is
// idempotent; Subscribe calls cancelled at any moment leave no goroutine
// running once the successful ones are closed. A Harness that also
// implements Disconnector is checked for reconnect reporting, one that
// implements UnreachableMaker for failing instead of hanging when the
// server is not there, and one that implements Inspector for leaving
// nothing on the server after cancelled Subscribe calls.
//
// Channel names carry a random suffix, so the suite can run against servers
// shared with other runs. It waits with generous deadlines and polling, never
// on exact timings.
package backplanetest
