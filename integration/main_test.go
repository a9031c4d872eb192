// Package integration tests strata end to end against the real servers the
// adapters' tests use (Redis at $STRATA_REDIS_ADDR, NATS at
// $STRATA_NATS_URL, RabbitMQ at $STRATA_AMQP_URL): several core.Cache nodes,
// each on connections of its own, sharing a Redis L2 (redisl2) or none, and
// one of the three backplanes. A missing server skips the tests, or fails
// them when $CI is "true".
package integration

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every cache,
// store, backplane, client and proxy the tests make is closed by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
