// Package meml2 is the in-process reference implementation of l2.Store. It
// implements l2.Store, l2.ConditionalStore and l2.MultiGetter and passes the
// l2test conformance suite.
//
// New gives a private store. Importing the package registers the "mem" URL
// scheme, so that l2.Open(ctx, "mem://NAME") gives a handle on a store shared
// by everything in the process opened with the same NAME: several caches in
// one test act as several nodes sharing one distributed cache. NewShared does
// the same from Go, with Options (a fake clock).
//
// For tests of code built on L2 (core's fail-safe, timeouts, circuit
// breakers), a Store can fail or slow down on demand (SetFault, ClearFault)
// and counts the calls made through it (Stats).
//
// A Store runs no goroutines: expired entries are dropped when they are read
// or swept, a little at a time, by later writes.
package meml2
