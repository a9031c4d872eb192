// Package reliability runs strata's failure scenarios against the real
// servers (Redis at $STRATA_REDIS_ADDR, NATS at $STRATA_NATS_URL, RabbitMQ
// at $STRATA_AMQP_URL), with the coherence checker (internal/coherence)
// watching every read: five nodes with fail-safe on, a Redis L2 and one of
// the three backplanes, each node reaching each server through Toxiproxy
// proxies of its own (internal/toxitest). A missing server skips the
// tests, or fails them when $CI is "true".
//
// Every scenario runs on every backplane. By default the faults last 3 s
// (30 s × STRATA_RELIABILITY_SCALE, whose default is 0.1);
// STRATA_RELIABILITY_SCALE=1 gives 30 s faults (about 11 minutes in all).
// STRATA_RELIABILITY_LOG=1 shows every node's log. docs/reliability.md has
// the scenarios, the rule and the figures.
//
// TestSlowFactories runs no fault but slow factories (0–300 ms) on three
// nodes per backplane, for 15 s per backplane (STRATA_COHERENCE_DURATION
// sets another length; `make coherence-long` runs it for 10 minutes).
package reliability

import (
	"flag"
	"testing"

	"github.com/redis/go-redis/v9/logging"
	"go.uber.org/goleak"
)

// TestMain silences go-redis's log (a line per failed dial while a proxy
// is down) and fails the run if a goroutine outlives the tests: every
// cache, client, proxy and server process is closed by then.
//
// Goroutines of Toxiproxy are not ours and are let be: Toxiproxy v2.12.0's NoopToxic
// sends to the next toxic's input without watching for an interrupt
// (toxics/noop.go), so when a toxic is removed while data flows through
// its link (the scenarios clear latency and limit_data toxics under load)
// the stub can stay blocked for good. Seen once in a CI run, after every
// test had passed. The same removal can leave the link's reader blocked on
// the other side of that pipe (stream.(*ChanWriter).Write, from
// ToxicLink.read): seen once with the three clusters at once, after every
// test had passed too; it is let be for the same reason.
//
// It also runs up to three tests at once (one cluster per backplane) unless
// -test.parallel is given: the tests mostly wait (for a fault's length, a
// recovery, the slow-factory run's 15 s) and the default, GOMAXPROCS,
// was 2 on the development machine, which ran the third backplane's
// scenarios and slow factories after the first two: 104 s where 55 s
// will do, for the same 31 CPU-seconds. `make coherence-long` runs them
// three at a time too.
func TestMain(m *testing.M) {
	logging.Disable()
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if p := flag.Lookup("test.parallel"); !explicit && p != nil && p.Value.(flag.Getter).Get().(int) < 3 {
		if err := flag.Set("test.parallel", "3"); err != nil {
			panic(err)
		}
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"))
}
