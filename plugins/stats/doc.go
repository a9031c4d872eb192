// Package stats is a core.Plugin that counts what happens in a cache —
// hits, stale hits, misses, fail-safe activations, factory errors and
// timeouts, eager refreshes, L2 errors, backplane traffic, evictions — in
// memory, readable at any time with Snapshot, without OpenTelemetry; and an
// http.Handler that serves the snapshot as JSON for a health endpoint.
//
//	st := stats.New()
//	c, err := core.New(core.Options{Name: "users", Plugins: []core.Plugin{st}})
//	...
//	http.Handle("/healthz/cache/users", st)
//
// The plugin is a core.HitObserver that never asks for hit operations, so
// an L1 hit stays on core's fast path: it costs the plugin one atomic
// increment, on one of several counters spread over cache lines so that
// cores do not contend, and allocates nothing.
//
// Use one Plugin per cache: Start refuses a second cache (the counts would
// mix), and events of other caches are ignored.
package stats
