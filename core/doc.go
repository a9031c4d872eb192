// Package core is strata's cache engine: an in-memory L1 per process, an
// optional distributed L2 and a backplane that tells every node when an entry
// changed, with the resilience large platforms need around them.
//
// A Cache is made with New and used through the generic functions GetOrSet,
// Get and Set and the methods Remove, Expire, RemoveByTag, ExpireByTag and
// Clear:
//
//	c, err := core.New(core.Options{Name: "users"})
//	defer c.Close()
//	u, err := core.GetOrSet(ctx, c, "user:42", loadUser,
//		core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second))
//
// What GetOrSet does, in order: an L1 lookup (a fresh hit returns at once and
// may start one eager background refresh); otherwise one factory call per key
// at a time (stampede protection: concurrent callers share its result), within
// the soft and hard factory timeouts; on failure or timeout a stale value is
// served when fail-safe allows it. A factory result never replaces a newer Set,
// Remove, Expire or tag invalidation of the same key.
//
// Every method is safe for concurrent use. A miss is never an error. Calls
// after Close return ErrClosed.
package core
