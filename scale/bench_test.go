package scale

import (
	"fmt"
	"testing"
	"time"
)

// benchSetups are the clusters the benchmarks run on: each backplane with
// no L2 and with a shared Redis L2.
func benchSetups(tb testing.TB) []setup {
	n := benchNodes(tb)
	var ss []setup
	for _, bp := range []string{"redis", "nats", "amqp"} {
		ss = append(ss, setup{backplane: bp, nodes: n}, setup{backplane: bp, redisL2: true, nodes: n})
	}
	return ss
}

// BenchmarkFanout makes one change at a time (core.Set and Cache.Remove in
// turn, each from the next node, on a key every node holds in L1) and
// times it from the sender's call until each other node has applied it. It
// reports, over the changes, the p50, p99 and max of the slowest node
// (p50-µs, p99-µs, max-µs), the p50 and p99 of every single delivery
// (node-p50-µs, node-p99-µs), the process CPU time per delivery spent
// while changes were under way (cpu-µs/delivery), the server's CPU time per
// delivery over the whole run (server-cpu-µs/delivery, at 10 ms
// resolution, and counting whatever else the shared server did meanwhile),
// and the heap and goroutines each node added. Run it with a fixed count:
//
//	go test -run '^$' -bench Fanout -benchtime 1000x ./scale
func BenchmarkFanout(b *testing.B) {
	for _, s := range benchSetups(b) {
		b.Run(s.String(), func(b *testing.B) {
			cl := newCluster(b, s)
			srv := serverOf(b, s.backplane)
			var lat latencies
			var cpu, srvCPU time.Duration
			if srv != nil {
				srvCPU -= srv.cpu()
			}
			i := 0
			for b.Loop() {
				key := fmt.Sprintf("user:%d", i)
				b.StopTimer()
				cl.seed(b, key, "old")
				b.StartTimer()
				cpu0 := processCPU()
				ch := cl.change(b, i%s.nodes, key, "new", i%2 == 1)
				cl.wait(b, ch, 10*time.Second)
				cpu += processCPU() - cpu0
				lat.add(ch)
				cl.rec.forget(ch)
				i++
			}
			if srv != nil {
				srvCPU += srv.cpu()
			}
			deliveries := float64(i * (s.nodes - 1))
			sum := lat.summary()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(micros(sum.p50), "p50-µs")
			b.ReportMetric(micros(sum.p99), "p99-µs")
			b.ReportMetric(micros(sum.max), "max-µs")
			b.ReportMetric(micros(sum.nodeP50), "node-p50-µs")
			b.ReportMetric(micros(sum.nodeP99), "node-p99-µs")
			b.ReportMetric(micros(cpu)/deliveries, "cpu-µs/delivery")
			if srv != nil {
				b.ReportMetric(micros(srvCPU)/deliveries, "server-cpu-µs/delivery")
			}
			b.ReportMetric(float64(cl.heapPerNode)/1024, "heap-KiB/node")
			b.ReportMetric(cl.goroutinesPerNode, "goroutines/node")
		})
	}
}

// burstSenders and burstChanges shape one round of BenchmarkBurst: that many
// nodes each make that many changes as fast as they can, all at once.
const (
	burstSenders = 10
	burstChanges = 100
)

// BenchmarkBurst has 10 nodes make 100 changes (core.Set of keys of their
// own) each, all at once, per round, and waits until every other node has
// applied all of them. It reports the deliveries (a change applied on one
// node) and changes per second of burst, from the first call to the last
// receipt (deliveries/s, changes/s), the process and server CPU time per
// delivery (cpu-µs/delivery, server-cpu-µs/delivery; the server's at 10 ms
// resolution and counting whatever else the shared server did meanwhile),
// and the p50 and p99 over changes of the slowest node's delay (latency
// under load). Run it with a few rounds:
//
//	go test -run '^$' -bench Burst -benchtime 5x ./scale
func BenchmarkBurst(b *testing.B) {
	for _, s := range benchSetups(b) {
		b.Run(s.String(), func(b *testing.B) {
			cl := newCluster(b, s)
			srv := serverOf(b, s.backplane)
			senders := min(burstSenders, s.nodes)
			var lat latencies
			var wall, cpu, srvCPU time.Duration
			rounds := 0
			for b.Loop() {
				cpu0 := processCPU()
				var srv0 time.Duration
				if srv != nil {
					srv0 = srv.cpu()
				}
				changes, d := cl.burst(b, rounds, senders, burstChanges)
				cpu += processCPU() - cpu0
				if srv != nil {
					srvCPU += srv.cpu() - srv0
				}
				wall += d
				for _, ch := range changes {
					lat.add(ch)
					cl.rec.forget(ch)
				}
				rounds++
			}
			changes := float64(rounds * senders * burstChanges)
			deliveries := changes * float64(s.nodes-1)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(deliveries/wall.Seconds(), "deliveries/s")
			b.ReportMetric(changes/wall.Seconds(), "changes/s")
			b.ReportMetric(micros(cpu)/deliveries, "cpu-µs/delivery")
			if srv != nil {
				b.ReportMetric(micros(srvCPU)/deliveries, "server-cpu-µs/delivery")
			}
			sum := lat.summary()
			b.ReportMetric(float64(sum.p50)/float64(time.Millisecond), "p50-ms")
			b.ReportMetric(float64(sum.p99)/float64(time.Millisecond), "p99-ms")
		})
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
