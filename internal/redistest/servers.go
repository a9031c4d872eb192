package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer returns the path of the redis-server binary; without one the
// test is skipped, or failed when $CI is "true".
func redisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not in $PATH, and CI=true forbids skipping: %v", err)
		}
		t.Skipf("skipping: redis-server is not in $PATH: %v", err)
	}
	return bin
}

// start runs redis-server with args until the test ends.
func start(t testing.TB, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// StartSentinel starts a primary, a replica of it and a Sentinel that
// monitors the primary under the name it returns (quorum 1), each a
// redis-server process of its own on a free loopback port that the test's
// cleanup stops, and returns once the Sentinel names the primary. A test
// can then make the Sentinel fail over to the replica (SENTINEL FAILOVER;
// the Sentinel learns of the replica within about ten seconds). Like
// StartCluster, it needs redis-server.
func StartSentinel(t testing.TB) (master string, sentinelAddrs []string) {
	t.Helper()
	bin := redisServer(t)
	dir := t.TempDir()
	mport, rport, sport := clusterPort(t), clusterPort(t), clusterPort(t)
	server := func(port int, extra ...string) {
		start(t, bin, append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--dbfilename", fmt.Sprintf("dump-%d.rdb", port),
			"--logfile", fmt.Sprintf("redis-%d.log", port)}, extra...)...)
	}
	server(mport)
	server(rport, "--replicaof", "127.0.0.1", fmt.Sprint(mport))
	master = "strata-test"
	conf := filepath.Join(dir, "sentinel.conf")
	cfg := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile sentinel.log\n"+
		"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 5000\n",
		sport, dir, master, mport, master)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, bin, conf, "--sentinel")
	saddr := fmt.Sprintf("127.0.0.1:%d", sport)
	sc := redis.NewSentinelClient(&redis.Options{Addr: saddr, MaxRetries: -1})
	defer sc.Close()
	mc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", mport), MaxRetries: -1})
	defer mc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	poll(ctx, t, "the primary to answer", func() bool { return mc.Ping(ctx).Err() == nil })
	poll(ctx, t, "the Sentinel to name the primary", func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, master).Result()
		return err == nil && len(addr) == 2 && addr[1] == fmt.Sprint(mport)
	})
	return master, []string{saddr}
}

// StartCluster starts a Redis Cluster of three primaries (no replicas) on
// free loopback ports, each a redis-server process of its own that the
// test's cleanup stops, and returns their addresses once the cluster is
// up (every slot served, every node known to every other). It needs the
// redis-server binary in $PATH; without it the test is skipped, or failed
// when $CI is "true".
func StartCluster(t testing.TB) []string {
	t.Helper()
	bin := redisServer(t)
	dir := t.TempDir()
	const n = 3
	addrs := make([]string, n)
	clients := make([]*redis.Client, n)
	for i := range n {
		port := clusterPort(t)
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
		start(t, bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
			"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
			"--logfile", fmt.Sprintf("redis-%d.log", port))
		clients[i] = redis.NewClient(&redis.Options{Addr: addrs[i], MaxRetries: -1})
		t.Cleanup(func() { _ = clients[i].Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, c := range clients {
		poll(ctx, t, "redis-server on "+addrs[i]+" to answer", func() bool { return c.Ping(ctx).Err() == nil })
	}
	for i, c := range clients {
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, addrs[i], err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(addrs[i])
			if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port).Err(); err != nil {
				t.Fatalf("CLUSTER MEET %s: %v", addrs[i], err)
			}
		}
	}
	for i, c := range clients {
		poll(ctx, t, "the cluster to be up on "+addrs[i], func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n))
		})
	}
	return addrs
}

// clusterPort returns a free port p whose cluster bus port p+10000 is free
// too.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(20000)
		if free(p) && free(p+10000) {
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

func free(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func poll(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
