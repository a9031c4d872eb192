// Command coherence runs the coherence checker (internal/coherence) for as
// long as you like against the real servers: five strata nodes with
// fail-safe on, a Redis L2 and a Redis, NATS or RabbitMQ backplane, each
// node reaching each server through Toxiproxy proxies of its own (an
// in-process Toxiproxy server), a random workload of reads, writes,
// removes and tag removals, and faults injected on a schedule, one at a
// time, round-robin. Every read is checked against the source of truth's
// history; at the end it prints the report (operations, violations of the
// staleness bound, late reads, caller-visible errors, latency, each
// fault's recovery time) and exits with status 1 if the bound was broken,
// a caller saw an error, or a fault never converged.
//
//	go run ./examples/coherence -backplane redis -duration 10m
//	go run ./examples/coherence -backplane nats -duration 30m -fault-length 30s -faults partition,l2-down
//
// Server addresses come from -redis, -nats and -amqp, defaulting to
// $STRATA_REDIS_ADDR, $STRATA_NATS_URL and $STRATA_AMQP_URL (then the
// local defaults). The restart fault, run here on the shared servers,
// takes every proxy down instead of restarting anything (the reliability
// tests restart servers of their own). docs/reliability.md explains the
// rule and has the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/stratacache/strata/internal/coherence"
	"github.com/stratacache/strata/internal/toxitest"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	var names []string
	for _, f := range coherence.Faults {
		names = append(names, f.Name)
	}
	bp := flag.String("backplane", "redis", "backplane: redis, nats or amqp")
	duration := flag.Duration("duration", 2*time.Minute, "how long to run")
	nodes := flag.Int("nodes", 5, "number of nodes")
	faults := flag.String("faults", strings.Join(names, ","), "faults to inject, in turn (comma-separated; empty: none)")
	every := flag.Duration("fault-every", time.Minute, "time from the start of one fault to the start of the next")
	length := flag.Duration("fault-length", 30*time.Second, "how long each fault lasts")
	workers := flag.Int("workers", 4, "goroutines issuing operations")
	pause := flag.Duration("pause", time.Millisecond, "pause of each worker between two operations")
	bound := flag.Duration("bound", 5*time.Second, "the nodes' BackplaneStalenessBound")
	slack := flag.Duration("slack", time.Second, "allowed on top of the bound for delivery and scheduling")
	recovery := flag.Duration("recovery-delay", 2*time.Second, "the nodes' AutoRecoveryDelay")
	keys := flag.Int("keys", 64, "number of keys")
	redisAddr := flag.String("redis", env("STRATA_REDIS_ADDR", "127.0.0.1:6379"), "Redis address (L2, and the Redis backplane)")
	natsURL := flag.String("nats", env("STRATA_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL")
	amqpURL := flag.String("amqp", env("STRATA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "RabbitMQ URL")
	flag.Parse()

	var plan []coherence.FaultSpec
	for _, n := range strings.Split(*faults, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		f, ok := coherence.FaultNamed(n)
		if !ok {
			log.Fatalf("unknown fault %q (known: %s)", n, strings.Join(names, ", "))
		}
		plan = append(plan, f)
	}
	if len(plan) > 0 && *length >= *every {
		log.Fatalf("-fault-length %v must be shorter than -fault-every %v", *length, *every)
	}
	ok, err := run(*bp, *duration, *nodes, plan, *every, *length, *workers, *pause, *bound, *slack, *recovery, *keys,
		*redisAddr, *natsURL, *amqpURL)
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(bp string, duration time.Duration, nodes int, plan []coherence.FaultSpec, every, length time.Duration,
	workers int, pause, bound, slack, recovery time.Duration, keys int, redisAddr, natsURL, amqpURL string) (bool, error) {
	logging.Disable() // go-redis logs every failed dial while a proxy is down
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	toxi, err := toxitest.New()
	if err != nil {
		return false, err
	}
	defer toxi.Close()
	cfg := coherence.ClusterConfig{Nodes: nodes, Backplane: bp, RedisAddr: redisAddr, NATSURL: natsURL, AMQPURL: amqpURL,
		Toxi: toxi, Bound: bound, RecoveryDelay: recovery}
	for _, f := range plan {
		if f.SmallQueues {
			cfg.NATSQueueSize, cfg.AMQPMaxQueueLength = coherence.SmallQueue, coherence.SmallQueue
			cfg.AMQPPrefetch = coherence.SmallPrefetch
		}
	}
	cluster, err := coherence.NewCluster(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		_ = toxi.Heal()
		if err := cluster.Close(); err != nil {
			log.Printf("close: %v", err)
		}
	}()
	checker, err := coherence.New(coherence.Config{Nodes: cluster.Caches, Keys: keys, Workers: workers, Pause: pause,
		Bound: bound, Slack: slack, RecoveryDelay: recovery})
	if err != nil {
		return false, err
	}
	fmt.Printf("%d nodes, %s backplane, Redis L2, bound %v + slack %v, auto-recovery delay %v, %v\n",
		nodes, bp, bound, slack, recovery, duration)
	checker.Start(ctx)
	e := &coherence.FaultEnv{Backplane: bp, Toxi: toxi, Cluster: cluster}
	end := time.Now().Add(duration)
	converged := true
	for i := 0; len(plan) > 0; i++ {
		start := time.Now().Add(every - length) // the first fault after a quiet spell
		if start.Add(length).After(end) || !sleepUntil(ctx, start) {
			break
		}
		spec := plan[i%len(plan)]
		f := checker.BeginFault(spec.Name, spec.Cut(bp, nodes)...)
		heal, err := spec.Inject(e)
		if err != nil {
			return false, fmt.Errorf("inject %s: %w", spec.Name, err)
		}
		sleepUntil(ctx, time.Now().Add(length))
		if err := heal(); err != nil {
			return false, fmt.Errorf("end %s: %w", spec.Name, err)
		}
		rec, err := f.End(ctx)
		if err != nil {
			converged = false
			fmt.Printf("%s  %-18s %v: %v\n", time.Now().Format("15:04:05"), spec.Name, length, err)
		} else {
			fmt.Printf("%s  %-18s %v: converged %v after\n", time.Now().Format("15:04:05"), spec.Name, length, rec.Round(time.Millisecond))
		}
	}
	sleepUntil(ctx, end)
	rep := checker.Stop()
	fmt.Print(rep)
	return converged && rep.Violations == 0 && rep.Errors == 0 && rep.Panics == 0, nil
}

// sleepUntil waits until t or until ctx ends, and reports whether it got
// to t.
func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(t)):
		return true
	}
}
