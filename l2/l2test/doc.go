// Package l2test is the conformance suite every l2.Store adapter must pass.
//
// An adapter's tests call Run with a Harness that makes stores, usually
// connected to a real server:
//
//	type harness struct{ client *redis.Client }
//
//	func (h harness) MakeStore(ctx context.Context, t *testing.T) (l2.Store, error) {
//		return redisl2.New(h.client, nil)
//	}
//
//	func TestConformance(t *testing.T) { l2test.Run(t, harness{client}) }
//
// The suite checks the whole l2.Store contract: misses, round trips,
// overwrite, delete, expiry by TTL (in real time, with margins and polling),
// a TTL of 100 years (core's "forever"), binary keys and values, empty and
// 1 MiB values, ownership of the slices passed in and returned, concurrent
// use, use after Close, and an idempotent Close. It checks that errors say
// what happened, as l2.Classify sorts them: a context done before the call
// (which then changes nothing) or during it gives an error wrapping the
// context's error; a ttl that is not positive is a permanent error. When a
// store also implements l2.ConditionalStore or l2.MultiGetter, the suite
// checks those too.
//
// Optional interfaces of the Harness enable more checks: with
// UnreachableMaker, that a store pointed at a server that is not there
// fails fast instead of hanging; with RawWriter, that a value the store did
// not write is returned as it is, not as an error nor a miss, and that
// SetIfNewer replaces it; with WrongTypeMaker, that a key holding a value of
// another type is a permanent error for Get and missing for GetMany.
//
// Every key the suite writes starts with a random per-Run prefix and has a
// TTL of at most a minute (the keys of the 100-year check are deleted when
// it ends), so it can run against a shared server, in parallel with other
// runs, and leaves nothing behind for long. Behaviour the suite checks need
// not be re-tested by each adapter.
package l2test
