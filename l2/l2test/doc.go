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
// binary keys and values, empty and 1 MiB values, ownership of the slices
// passed in and returned, concurrent use, cancelled contexts, use after
// Close, and an idempotent Close. When a store also implements
// l2.ConditionalStore or l2.MultiGetter, the suite checks those too; when
// the Harness also implements UnreachableMaker, it checks that a store
// pointed at a server that is not there fails fast instead of hanging.
//
// Every key the suite writes starts with a random per-Run prefix and has a
// TTL of at most a minute, so it can run against a shared server, in
// parallel with other runs, and leaves nothing behind for long. Behaviour the
// suite checks need not be re-tested by each adapter.
package l2test
