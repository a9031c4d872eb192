package reliability

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/coherence"
	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/internal/toxitest"
)

// Settings every scenario's nodes and checker share.
const (
	nodes         = 5
	bound         = time.Second // Options.BackplaneStalenessBound
	recoveryDelay = time.Second // Options.AutoRecoveryDelay
	slack         = time.Second // on top of bound for delivery and scheduling
	// convergenceTarget is the promise after a fault: the auto-recovery
	// delay plus 1 s. It is not met after an outage of the backplane or of
	// a node (docs/reliability.md, "Findings"): the nodes' clients take up
	// to a second or two more to reconnect (go-redis probes a dead server
	// once a second, nats.go reconnects after its wait) and the queue
	// drains one round trip per item. A run slower than the target logs it;
	// a run slower than convergenceLimit fails.
	convergenceTarget = recoveryDelay + time.Second
	convergenceLimit  = 15 * time.Second
)

// scale returns STRATA_RELIABILITY_SCALE (default 0.1): faults last 30 s
// times the scale.
func scale(t *testing.T) float64 {
	raw := os.Getenv("STRATA_RELIABILITY_SCALE")
	if raw == "" {
		return 0.1
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || f <= 0 {
		t.Fatalf("STRATA_RELIABILITY_SCALE=%q: want a number > 0", raw)
	}
	return f
}

// TestScenarios runs each failure scenario on each backplane with the
// checker's workload going, and asserts: no caller-visible error, no
// panic, no read breaking the staleness bound, and every node serving the
// latest value of every key within convergenceLimit after the fault ends
// (logging runs slower than convergenceTarget, and reads of values a
// cut-off node replaced served after it was back longer than the target:
// the checker's "late" reads). The three backplanes run in parallel, the
// scenarios of one backplane one after the other.
func TestScenarios(t *testing.T) {
	for _, bp := range coherence.Backplanes {
		t.Run(bp, func(t *testing.T) {
			t.Parallel()
			for _, sc := range coherence.Faults {
				t.Run(sc.Name, func(t *testing.T) { runScenario(t, bp, sc) })
			}
		})
	}
}

// logf writes a line to stderr, timestamped like the nodes' logs, when
// STRATA_RELIABILITY_LOG is set.
func logf(format string, args ...any) {
	if os.Getenv("STRATA_RELIABILITY_LOG") != "" {
		fmt.Fprintf(os.Stderr, "time=%s msg=%q\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
	}
}

// sharedServers points cfg at the shared Redis server and, for its
// backplane, the shared NATS or RabbitMQ server (skipping the test without
// them, or failing it when $CI is "true").
func sharedServers(t *testing.T, cfg *coherence.ClusterConfig) {
	cfg.RedisAddr = redistest.Addr(t)
	switch cfg.Backplane {
	case "nats":
		cfg.NATSURL = natstest.URL(t)
	case "amqp":
		cfg.AMQPURL = rabbittest.URL(t)
	}
}

// nodeLog returns, when STRATA_RELIABILITY_LOG is set, the ClusterConfig
// option that sends every node's log (Info and up) to stderr, for a look at
// what recovery does when (the fault's start and end are logged too); nil
// otherwise.
func nodeLog(scenario string) func(int, *core.Options) {
	if os.Getenv("STRATA_RELIABILITY_LOG") == "" {
		return nil
	}
	return func(i int, o *core.Options) {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", i, "scenario", scenario)
	}
}

// runScenario builds a cluster, starts the checker, lets it warm up,
// injects the fault for 30 s × scale, ends it, measures convergence, and
// checks the report.
func runScenario(t *testing.T, bp string, sc coherence.FaultSpec) {
	ctx := context.Background()
	fault := time.Duration(float64(30*time.Second) * scale(t))
	e := &coherence.FaultEnv{Backplane: bp, Toxi: toxitest.Start(t)}
	cfg := coherence.ClusterConfig{Nodes: nodes, Backplane: bp, Toxi: e.Toxi, Bound: bound, RecoveryDelay: recoveryDelay}
	sharedServers(t, &cfg)
	if sc.Private {
		// Servers of the test's own, restarted by the fault (never the
		// shared ones); RabbitMQ stays shared.
		servers := []*server{startServer(t, "redis-server", redisArgs(t.TempDir()))}
		cfg.RedisAddr = servers[0].Addr()
		if bp == "nats" {
			servers = append(servers, startServer(t, "nats-server", natsArgs))
			cfg.NATSURL = "nats://" + servers[1].Addr()
		}
		e.StopServers = func() error {
			for _, s := range servers {
				s.stop()
			}
			return nil
		}
		e.StartServers = func() error {
			for _, s := range servers {
				s.start()
			}
			return nil
		}
	}
	cfg.Options = nodeLog(bp + "/" + sc.Name)
	if sc.SmallQueues {
		cfg.NATSQueueSize, cfg.AMQPMaxQueueLength = coherence.SmallQueue, coherence.SmallQueue
		cfg.AMQPPrefetch = coherence.SmallPrefetch
	}
	cluster, err := coherence.NewCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Cluster = cluster
	t.Cleanup(func() {
		if err := e.Toxi.Heal(); err != nil {
			t.Errorf("heal the proxies: %v", err)
		}
		if err := cluster.Close(); err != nil {
			t.Errorf("close the cluster: %v", err)
		}
	})

	checker, err := coherence.New(coherence.Config{Nodes: cluster.Caches, Bound: bound, Slack: slack,
		RecoveryDelay: recoveryDelay, Workers: 2, Pause: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checker.Start(ctx)
	stop := sync.OnceValue(checker.Stop)
	defer stop()
	time.Sleep(time.Second) // warm up: every node holds entries in L1

	f := checker.BeginFault(sc.Name, sc.Cut(bp, nodes)...)
	logf("fault %s on %s begins", sc.Name, bp)
	heal, err := sc.Inject(e)
	if err != nil {
		t.Fatalf("inject %s: %v", sc.Name, err)
	}
	time.Sleep(fault)
	if err := heal(); err != nil {
		t.Fatalf("end %s: %v", sc.Name, err)
	}
	logf("fault %s on %s ends", sc.Name, bp)
	recovery, recErr := f.End(ctx)
	time.Sleep(500 * time.Millisecond)
	rep := stop()
	t.Logf("%s on %s, fault %v:\n%s", sc.Name, bp, fault, rep)
	record(t, bp, sc.Name, fault, rep)

	switch {
	case recErr != nil:
		t.Error(recErr)
	case recovery > convergenceLimit:
		t.Errorf("the nodes converged %v after the fault ended, want within %v", recovery, convergenceLimit)
	case recovery > convergenceTarget:
		t.Logf("FINDING: the nodes converged %v after the fault ended, slower than the target %v (AutoRecoveryDelay + 1s)", recovery, convergenceTarget)
	}
	if rep.Late > 0 {
		t.Logf("FINDING: %d late reads (a cut-off node's change reached the others more than AutoRecoveryDelay + %v after it was back); first: %v",
			rep.Late, slack, rep.FirstLate[0])
	}
	if rep.Errors != 0 {
		t.Errorf("%d caller-visible errors with fail-safe on, want 0; first: %q", rep.Errors, rep.FirstErrors)
	}
	if rep.Panics != 0 {
		t.Errorf("%d panics", rep.Panics)
	}
	if rep.Violations != 0 {
		t.Errorf("%d reads broke the staleness bound, want 0; first: %v", rep.Violations, rep.FirstViolations)
	}
	if rep.Reads == 0 || rep.Sets == 0 {
		t.Errorf("the workload did nothing: %d reads, %d sets", rep.Reads, rep.Sets)
	}
}

// record appends the run's figures as a Markdown table row to the file
// named by $STRATA_RELIABILITY_REPORT, when set (docs/reliability.md's
// tables come from it).
func record(t *testing.T, bp, name string, fault time.Duration, r coherence.Report) {
	rec := "did not converge"
	if len(r.Faults) > 0 && r.Faults[0].Converged {
		rec = r.Faults[0].Recovery.Round(time.Millisecond).String()
	}
	appendRow(t, fmt.Sprintf("| %s | %s | %v | %d | %d | %d | %d | %v | %v | %s |", bp, name, fault, r.Ops, r.Violations, r.Late, r.Errors,
		r.ReadP99.Round(time.Millisecond), r.P99.Round(time.Millisecond), rec))
}

// appendRow appends a line to the file named by $STRATA_RELIABILITY_REPORT,
// when set.
func appendRow(t *testing.T, row string) {
	path := os.Getenv("STRATA_RELIABILITY_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, row); err != nil {
		t.Errorf("report: %v", err)
	}
}
