package coherence

import (
	"errors"
	"fmt"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/stratacache/strata/internal/toxitest"
)

// FaultEnv is what a fault acts on.
type FaultEnv struct {
	Backplane string
	Toxi      *toxitest.Server
	Cluster   *Cluster
	// StopServers and StartServers, when set, stop the cluster's own
	// servers and start them again (a restart); without them the restart
	// fault takes every proxy down instead (an outage without data loss).
	StopServers, StartServers func() error
}

// FaultSpec is one kind of failure.
type FaultSpec struct {
	Name string
	// Doc says what it does, for people.
	Doc string
	// Private: the fault restarts servers, so the cluster should run on
	// servers of its own (FaultEnv.StopServers and StartServers).
	Private bool
	// SmallQueues: the cluster should be built with small transport queues
	// (ClusterConfig.NATSQueueSize, AMQPMaxQueueLength = SmallQueue,
	// AMQPPrefetch = SmallPrefetch).
	SmallQueues bool
	// Cut returns the nodes whose backplane the fault cuts, for
	// Checker.BeginFault.
	Cut func(backplane string, nodes int) []int
	// Inject starts the fault and returns the function that ends it.
	Inject func(e *FaultEnv) (heal func() error, err error)
}

// SmallQueue is the transport queue size of clusters built for a fault
// with SmallQueues.
const SmallQueue = 16

// SmallPrefetch is the RabbitMQ prefetch of clusters built for a fault
// with SmallQueues: with the default (256) a slow consumer's unacknowledged
// messages wait in its client, late, instead of overflowing the queue.
const SmallPrefetch = 4

// Victims of the faults that hit one node.
const (
	PartitionVictim    = 2
	SlowConsumerVictim = 1
)

// SlowConsumerDelay is how late the slow consumer handles each message.
const SlowConsumerDelay = 20 * time.Millisecond

func none(string, int) []int { return nil }

func every(_ string, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// down takes the proxies m matches down and returns the function that
// brings them back.
func down(e *FaultEnv, m toxitest.Match) (func() error, error) {
	return func() error { return e.Toxi.Up(m) }, e.Toxi.Down(m)
}

// Faults are the failures the reliability tests and examples/coherence
// play, by name.
var Faults = []FaultSpec{
	{Name: "l2-down", Doc: "every node's L2 connections closed and refused", Cut: none,
		Inject: func(e *FaultEnv) (func() error, error) {
			return down(e, toxitest.Match{Role: toxitest.RoleL2})
		}},
	{Name: "backplane-down", Doc: "every node's backplane connections closed and refused", Cut: every,
		Inject: func(e *FaultEnv) (func() error, error) {
			return down(e, toxitest.Match{Role: toxitest.RoleBackplane})
		}},
	{Name: "l2-latency-500ms", Doc: "every L2 round trip 500 ms slower (250 ms each way)", Cut: none,
		Inject: func(e *FaultEnv) (func() error, error) {
			m := toxitest.Match{Role: toxitest.RoleL2}
			return func() error { return e.Toxi.Clear(m) }, e.Toxi.Latency(m, 250*time.Millisecond, 0)
		}},
	{Name: "partition", Doc: fmt.Sprintf("node %d cut from L2 and the backplane", PartitionVictim),
		Cut: func(string, int) []int { return []int{PartitionVictim} },
		Inject: func(e *FaultEnv) (func() error, error) {
			return down(e, toxitest.Match{Node: NodeName(PartitionVictim)})
		}},
	{Name: "restart", Private: true, Cut: every,
		Doc: "the Redis server (L2, and the Redis backplane) and the NATS server killed and started again, empty; RabbitMQ taken away by its proxies",
		Inject: func(e *FaultEnv) (func() error, error) {
			var heals []func() error
			var errs []error
			add := func(heal func() error, err error) {
				heals, errs = append(heals, heal), append(errs, err)
			}
			if e.StopServers != nil {
				add(e.StartServers, e.StopServers())
			} else {
				add(down(e, toxitest.Match{Role: toxitest.RoleL2}))
			}
			if e.StopServers == nil || e.Backplane == "amqp" {
				add(down(e, toxitest.Match{Role: toxitest.RoleBackplane}))
			}
			return func() error {
				var errs []error
				for _, h := range heals {
					errs = append(errs, h())
				}
				return errors.Join(errs...)
			}, errors.Join(errs...)
		}},
	{Name: "slow-consumer", SmallQueues: true,
		Doc: fmt.Sprintf("node %d handles each message %v late: NATS drops what overflows its queue, RabbitMQ the oldest queued, and Redis's subscriber connection is closed after every 4 KiB (as its output-buffer limit would)",
			SlowConsumerVictim, SlowConsumerDelay),
		Cut: func(bp string, _ int) []int {
			if bp == "redis" {
				return []int{SlowConsumerVictim} // the toxic closes its publishing connections too
			}
			return nil
		},
		Inject: func(e *FaultEnv) (func() error, error) {
			slow := e.Cluster.Slow[SlowConsumerVictim]
			slow.SetDelay(SlowConsumerDelay)
			if e.Backplane != "redis" {
				return func() error { slow.SetDelay(0); return nil }, nil
			}
			m := toxitest.Match{Node: NodeName(SlowConsumerVictim), Role: toxitest.RoleBackplane}
			err := e.Toxi.AddToxic(m, "output-buffer-limit", "limit_data", toxitest.Downstream, toxiclient.Attributes{"bytes": 4096})
			return func() error { slow.SetDelay(0); return e.Toxi.Clear(m) }, err
		}},
}

// FaultNamed returns the fault called name.
func FaultNamed(name string) (FaultSpec, bool) {
	for _, f := range Faults {
		if f.Name == name {
			return f, true
		}
	}
	return FaultSpec{}, false
}
