// Package sim is a deterministic simulation of a strata cluster: 2 to 7 nodes
// of core.Cache in one testing/synctest bubble, over meml2 and membackplane
// wrapped in fault layers of its own, driven by one seed.
//
// A seed gives a Plan (NewPlan): the cluster's options, a workload of
// GetOrSet, Get, GetOrSetMany, Set, Remove, Expire, RemoveByTag, ExpireByTag
// and Clear calls in bursts on a few keys, against a versioned source of truth
// (each key's version; factories read it, possibly slowly; writers bump it,
// then tell the cache on their node), and fault windows: message delay up to
// two staleness bounds (in order), reordering, duplication, loss (silent or
// reported Lost), disconnections (reported late or at once, then
// Reconnected), replays of captured messages, publishes that fail or time out
// after the transport took them, slow or failing subscriptions, L2 latency
// past the callers' timeouts, L2 errors, writes lost after their
// acknowledgement or stored with their reply lost, clock skew and steps per
// node, restarts (Close, then New with the same name), factories that are
// slow, fail, time out or panic. Every decision taken while the run goes on
// is drawn from a generator seeded by the seed and the identity of what it
// decides (which message to which node, which call at which virtual instant),
// never from which goroutine asked first, so the same seed gives the same
// run.
//
// Run runs a plan and checks it afterwards against docs/consistency.md:
// bounded staleness on every read path, per change and per node, from what
// the node is promised to have learnt (check.go explains each rule and which
// fault voids which part of it); no lost update in L1 or L2; convergence once
// the faults are over; quiescence of a healthy cluster; calls returning
// within their timeouts; no panic; no goroutine left after Close; eager
// refreshes producing newer values; replays changing nothing. Shrink makes a
// failing plan smaller. The tests of the package run it (TestSim; see
// docs/reliability.md, "Deterministic simulation").
package sim
