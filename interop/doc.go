// Package interop holds strata's programs in other languages that speak
// its wire formats (docs/wire-format.md), and the Go tests that run them
// against live nodes. node/publish.js publishes a signed invalidation from
// Node.js with npm's redis client; docs/cli.md shows how to use it.
package interop
