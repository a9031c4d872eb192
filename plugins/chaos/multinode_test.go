package chaos_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/plugins/chaos"
)

// chaosNode is one cache of the cluster with its chaos wrappers.
type chaosNode struct {
	c  *core.Cache
	l2 chaos.Store
	bp *chaos.Backplane
}

// newChaosCluster makes n caches sharing one in-process L2 and one
// in-process backplane, each through its own chaos wrappers (faults off).
func newChaosCluster(t *testing.T, n int, mod func(*core.Options)) []*chaosNode {
	t.Helper()
	name := "chaos-" + rand.Text()
	bus := membackplane.NewBus()
	nodes := make([]*chaosNode, n)
	for i := range nodes {
		mem, err := meml2.NewShared(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := chaos.NewStore(mem, &chaos.Options{Mode: chaos.Never, Seed: uint64(1 + i)})
		if err != nil {
			t.Fatal(err)
		}
		bp, err := chaos.NewBackplane(bus.Connect(nil), &chaos.Options{Mode: chaos.Never, Seed: uint64(101 + i)})
		if err != nil {
			t.Fatal(err)
		}
		o := core.Options{Name: "chaos", InstanceID: fmt.Sprint("node-", i), L2: st, Backplane: bp}
		if mod != nil {
			mod(&o)
		}
		c, err := core.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			st.Close()
			bp.Close()
		})
		nodes[i] = &chaosNode{c: c, l2: st, bp: bp}
	}
	for _, nd := range nodes {
		waitUntil(t, 5*time.Second, "backplane connected", func() bool { return !nd.c.Stats().Disconnected })
	}
	return nodes
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// source is the system of record behind the cache: a map, failing and slow
// on demand. A slow read returns the value it read before sleeping, as a
// slow database query returns what it saw when it started.
type source struct {
	mu       sync.Mutex
	values   map[string]string
	failRate float64
	slowRate float64
	slow     time.Duration
	rng      *mathrand.Rand
}

func (s *source) set(key, v string) {
	s.mu.Lock()
	s.values[key] = v
	s.mu.Unlock()
}

func (s *source) get(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[key]
}

func (s *source) load(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
	s.mu.Lock()
	v, fail, slow := s.values[fc.Key], s.rng.Float64() < s.failRate, s.rng.Float64() < s.slowRate
	s.mu.Unlock()
	if fail {
		return "", errors.New("source down")
	}
	if slow {
		select {
		case <-time.After(s.slow):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return v, nil
}

func (s *source) setRates(fail, slow float64) {
	s.mu.Lock()
	s.failRate, s.slowRate = fail, slow
	s.mu.Unlock()
}

// TestThreeNodesUnderChaos: three nodes share an L2 and a backplane that
// fail half their calls and drop half the messages, while their source
// fails and stalls too. Readers and writers on every node see no error.
// Once the faults stop, every node converges on the source's latest value
// of every key — the values written during the chaos, not only later ones
// — within the auto-recovery delay plus a second, as soon as each node has
// published one message (see docs/chaos.md for why that is the guarantee).
func TestThreeNodesUnderChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const (
		numKeys       = 16
		chaosFor      = 2 * time.Second
		recoveryDelay = 100 * time.Millisecond
		converge      = recoveryDelay + time.Second
		// l1Duration bounds how long a node serves an L1 entry without
		// re-reading L2: longer than converge, so that convergence comes
		// from invalidations, not expiry.
		l1Duration = 3 * time.Second
	)
	defaults := core.DefaultEntryOptions()
	defaults.Duration = time.Hour // in L2: convergence must not come from expiry
	defaults.L1Duration = l1Duration
	defaults.FailSafe = true
	defaults.FailSafeMaxDuration = 2 * time.Hour
	defaults.FailSafeThrottleDuration = 50 * time.Millisecond
	defaults.FactorySoftTimeout = 50 * time.Millisecond
	defaults.FactoryHardTimeout = time.Second
	defaults.L2SoftTimeout = 20 * time.Millisecond
	defaults.L2HardTimeout = 500 * time.Millisecond
	nodes := newChaosCluster(t, 3, func(o *core.Options) {
		o.DefaultEntryOptions = &defaults
		o.AutoRecoveryDelay = recoveryDelay
		o.BackplaneStalenessBound = 200 * time.Millisecond
	})
	ctx := context.Background()
	src := &source{values: map[string]string{}, slow: 200 * time.Millisecond, rng: mathrand.New(mathrand.NewPCG(7, 7))}
	keys := make([]string, numKeys)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
		src.set(keys[i], keys[i]+"=initial")
	}
	// Warm every node: fail-safe needs a value to fall back on.
	for _, n := range nodes {
		for _, k := range keys {
			if _, err := core.GetOrSet(ctx, n.c, k, src.load); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Chaos.
	for _, n := range nodes {
		n.l2.SetFailureRate(0.5)
		n.l2.SetDelay(0, 2*time.Millisecond)
		n.l2.SetMode(chaos.Maybe)
		n.bp.SetFailureRate(0.5)
		n.bp.SetDropRate(0.5)
		n.bp.SetDelay(0, 2*time.Millisecond)
		n.bp.SetMode(chaos.Maybe)
	}
	src.setRates(0.2, 0.05)
	var (
		keyLocks [numKeys]sync.Mutex // one writer per key at a time: the source's order is the cache's
		writes   atomic.Int64
		ops      atomic.Int64
		errMu    sync.Mutex
		errs     []string
		known    int
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		msg := fmt.Sprintf(format, args...)
		if knownCoreBug(msg) {
			known++
			return
		}
		errs = append(errs, msg)
	}
	stop := time.Now().Add(chaosFor)
	var wg sync.WaitGroup
	for ni, n := range nodes {
		for g := range 4 {
			wg.Go(func() {
				rng := mathrand.New(mathrand.NewPCG(uint64(ni), uint64(g)))
				for time.Now().Before(stop) {
					ops.Add(1)
					ki := rng.IntN(numKeys)
					k := keys[ki]
					switch op := rng.IntN(10); {
					case op < 3:
						keyLocks[ki].Lock()
						v := fmt.Sprintf("%s=%d", k, writes.Add(1))
						src.set(k, v)
						err := core.Set(ctx, n.c, k, v)
						keyLocks[ki].Unlock()
						if err != nil {
							fail("node %d: Set(%s): %v", ni, k, err)
						}
					case op < 8:
						if _, err := core.GetOrSet(ctx, n.c, k, src.load); err != nil {
							fail("node %d: GetOrSet(%s): %v", ni, k, err)
						}
					default:
						if _, _, err := core.Get[string](ctx, n.c, k); err != nil {
							fail("node %d: Get(%s): %v", ni, k, err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d caller-visible errors under chaos, first: %s", len(errs), strings.Join(errs[:min(5, len(errs))], "; "))
	}
	if known > 0 {
		t.Logf("KNOWN CORE BUG: %d GetOrSet calls failed although fail-safe had a value to serve (see knownCoreBug)", known)
	}
	var injected chaos.Stats
	var seen core.Stats
	for _, n := range nodes {
		for _, st := range []chaos.Stats{n.l2.Stats(), n.bp.Stats()} {
			injected.Failures += st.Failures
			injected.Dropped += st.Dropped
		}
		cs := n.c.Stats()
		seen.L2Errors += cs.L2Errors
		seen.BackplaneErrors += cs.BackplaneErrors
		seen.LossEvents += cs.LossEvents
	}
	t.Logf("under chaos: %d operations (%d writes), 0 errors; injected %d failures and %d drops; core saw %d L2 errors, %d publish errors, %d loss events",
		ops.Load(), writes.Load(), injected.Failures, injected.Dropped, seen.L2Errors, seen.BackplaneErrors, seen.LossEvents)
	if injected.Failures == 0 || injected.Dropped == 0 || seen.L2Errors == 0 || seen.BackplaneErrors == 0 {
		t.Fatal("the chaos did not reach core; the test proves nothing")
	}

	// Calm: faults off, then each node publishes once (a write of its own
	// key), which lets the others see any gap in its sequence numbers.
	for _, n := range nodes {
		n.l2.SetMode(chaos.Never)
		n.bp.SetMode(chaos.Never)
	}
	src.setRates(0, 0)
	calm := time.Now()
	for i, n := range nodes {
		if err := core.Set(ctx, n.c, fmt.Sprint("fence-", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	// mismatches lists the node-key pairs whose Get does not return the
	// source's value. With missesOK, a miss is no mismatch: a write that
	// failed during the chaos is replayed into L2 as an expired entry (a
	// fail-safe fallback: another node may have replaced it unheard), so a
	// plain Get of such a key misses until someone writes it again; what
	// must never happen is an older value served.
	mismatches := func(missesOK bool) (out []string) {
		for ni, n := range nodes {
			for _, k := range keys {
				want := src.get(k)
				got, ok, err := core.Get[string](ctx, n.c, k)
				if err != nil || (ok || !missesOK) && got != want {
					out = append(out, fmt.Sprintf("node %d %s: got %q (found %v, err %v), want %q", ni, k, got, ok, err, want))
				}
			}
		}
		sort.Strings(out)
		return out
	}
	for {
		left := mismatches(true)
		if len(left) == 0 {
			t.Logf("converged on the values written during the chaos %v after it stopped (bound %v)", time.Since(calm).Round(time.Millisecond), converge)
			break
		}
		if time.Since(calm) > converge {
			t.Fatalf("%d of %d node-key pairs still differ from the source %v after the chaos stopped:\n%s",
				len(left), len(nodes)*numKeys, converge, strings.Join(left, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}

	// And a write made now reaches every node.
	for i, k := range keys {
		v := k + "=final"
		src.set(k, v)
		if err := core.Set(ctx, nodes[i%len(nodes)].c, k, v); err != nil {
			t.Fatal(err)
		}
	}
	final := time.Now()
	waitUntil(t, converge, "final writes on every node", func() bool { return len(mismatches(false)) == 0 })
	t.Logf("final writes seen by every node after %v", time.Since(final).Round(time.Millisecond))
}

// tolerateKnownCoreBugs makes the test count, log and tolerate the core bug
// described at knownCoreBug instead of failing on it. Set it to false once
// core is fixed.
const tolerateKnownCoreBugs = false

// knownCoreBug reports whether a caller-visible error is one core returns,
// today, when a GetOrSet with fail-safe and a stale value fails or times
// out while a newer entry for its key reached L1 and went stale itself (a
// Set on the same node, expired since by a message from another node or a
// loss of messages): core's throttle step serves a newer entry only when it
// is fresh, and otherwise gives up, so the caller gets "timed out and its
// stale value is gone" (or, when the factory failed, its error) instead of
// the newer stale value or the older one.
func knownCoreBug(msg string) bool {
	return tolerateKnownCoreBugs && strings.Contains(msg, ": GetOrSet(") &&
		(strings.HasSuffix(msg, ": source down") || strings.Contains(msg, "timed out and its stale value is gone"))
}
