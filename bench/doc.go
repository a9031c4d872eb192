// Package bench holds the workloads that compare strata with other Go
// caches and with the raw messaging clients, side by side in one run:
//
//   - L1HitCases: one warm key read over and over (GetOrSet-style hit), for
//     strata and its peers;
//   - MissCases: a new key per read, through a trivial source (GetOrSet-style
//     miss), for strata, sturdyc and raw otter;
//   - HitRatioPolicies and ZipfTrace: the hit ratio of each cache's
//     eviction policy on a Zipf-distributed key trace;
//   - InvalidationLatency and RawLatency: set on node A until node B hears
//     of it, per backplane, next to the raw client's publish → receive;
//     NewInvalidationPath and NewRawPath make the same trips one at a
//     time, for a caller that interleaves them (integration's paired
//     benchmark) or measures one alone (rabbitbackplane's raw client);
//   - NewUpdatePath and NewRawUpdatePath: an update on node A until node B
//     serves the new value (both with a Redis L2), per backplane, next to
//     the raw clients' SET, publish → receive, GET; Interleave makes
//     rounds of trips on several paths, one of each in turn.
//
// `go test -bench . ./bench` runs them as benchmarks; `go run
// ./examples/bench` runs them all and writes the report of
// docs/benchmarks.md with its charts. The package's tests only check, on
// tiny inputs, that every workload runs and measures what it says.
package bench
