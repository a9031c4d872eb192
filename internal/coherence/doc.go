// Package coherence checks strata's promise that no node serves data
// another node has replaced, beyond a stated bound, whatever fails.
//
// A Checker drives N caches (nodes sharing an L2 and a backplane) with a
// random workload (Config.Mix) — GetOrSet reads whose factory reads a
// Source (slowly, with Config.FactoryDelay), Get reads, writes that update
// the Source and then Set or Remove the key on one node, and tag removals
// that update a group of keys and then RemoveByTag them — and checks every
// read against the Source's history: a read that returns a value replaced
// longer ago than the rule allows is a Violation (see
// Checker.allowedUntil for the rule, and docs/reliability.md); in a run
// without faults (Config.Healthy), one replaced by a change that returned
// before it started, on the node that made it, or more than
// Config.Propagation before, on another, is Outdated. Faults are
// injected by the caller (usually through internal/toxitest proxies) and
// marked with BeginFault and Fault.End, which measures how long the nodes
// take to converge after the fault. The Report has the operation counts,
// violations, caller-visible errors, latency percentiles and each fault's
// recovery time.
//
// NewCluster builds the nodes the checker needs: core.Cache nodes on a
// Redis L2 (redisl2) and a Redis, NATS or RabbitMQ backplane, each node
// reaching each server through Toxiproxy proxies of its own.
//
// The reliability tests (package reliability) and the long-run program
// (examples/coherence) use it.
package coherence
