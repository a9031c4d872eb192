// Package scale measures how a change made on one strata node reaches many
// others: 50 core.Cache nodes in one process by default, each with a
// connection of its own to the real Redis (pub/sub), NATS or RabbitMQ server
// the other tests use, with no L2 or with a shared Redis L2 (redisl2).
//
// The package has no API: it holds a test and benchmarks only.
//
//   - TestFanout, part of `make test`, makes 100 changes (core.Set and
//     Cache.Remove, each from a different node) on 50 nodes per backplane
//     and checks that every other node applies every change exactly once,
//     that none of them still serves its old copy afterwards, and that
//     every change got through on its first publish: no publish error,
//     nothing queued for auto-recovery, no loss. It logs the fan-out
//     latency and asserts no bound on it.
//   - BenchmarkFanout times changes one at a time: from the call on the
//     sending node until each of the other nodes has applied the message
//     (core's Observer is told when a node's receipt of a backplane message
//     ends, after its L1 copy is dropped), and reports the p50, p99 and max
//     over changes of the slowest node, the per-node p50 and p99, and the
//     heap and goroutines per node.
//   - BenchmarkBurst has several nodes make changes at once, as fast as they
//     can, and reports the deliveries per second the cluster sustains, the
//     process CPU time and the server's CPU time per delivery.
//   - BenchmarkColdRefill plays the herd after a Clear with a Redis L2: every
//     node reads the same keys, cached nowhere, at once; it reports the
//     factory calls, publishes and deliveries per key, without and with
//     core.Options.DistributedStampedeLock.
//
// $STRATA_SCALE_NODES sets the number of nodes of the benchmarks (default
// 50). docs/scaling.md has the figures, how they were measured, and the plan
// for 1,000 nodes.
package scale
