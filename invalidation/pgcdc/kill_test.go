package pgcdc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/invalidation/pgcdc"
)

// childEnv, set, makes the test binary run a consumer (child) instead of
// the tests: TestKillNineDuringBurst kills one with SIGKILL.
const childEnv = "STRATA_PGCDC_CHILD"

// childConfig is what the test tells a child consumer (as JSON in
// childEnv).
type childConfig struct {
	URL, Name, Prefix             string
	Rules                         []pgcdc.Rule
	Publication, Slot             string
	RetryInterval, StatusInterval time.Duration
}

// child runs a consumer on a cache of its own until SIGTERM. It prints
// "active" when it holds the slot, "applied KEY..." for each transaction
// applied, and its stats as JSON when it stops.
func child() int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	t := &childTB{}
	cache := newCache(t, cfg.Name, cfg.Prefix, "", "", nil)
	defer t.cleanup()
	c, err := pgcdc.New(cfg.URL, cfg.Rules, &pgcdc.Options{Publication: cfg.Publication, Slot: cfg.Slot,
		RetryInterval: cfg.RetryInterval, StatusInterval: cfg.StatusInterval,
		// Written to the pipe at once (os.Stdout is unbuffered): a line
		// printed is an invalidation applied and published.
		OnApply: func(tx pgcdc.Transaction) { fmt.Println("applied " + strings.Join(tx.Keys, " ")) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		for !c.Stats().Active {
			time.Sleep(2 * time.Millisecond)
		}
		fmt.Println("active")
	}()
	err = c.Run(ctx, cache)
	b, _ := json.Marshal(c.Stats())
	fmt.Println(string(b))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// childTB is the testing.TB newCache needs, outside a test.
type childTB struct {
	testing.TB
	cleanups []func()
}

func (t *childTB) Helper()                   {}
func (t *childTB) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *childTB) Fatal(args ...any)         { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }
func (t *childTB) Fatalf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...); os.Exit(2) }
func (t *childTB) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (t *childTB) Skipf(f string, a ...any)  { t.Fatalf(f, a...) }
func (t *childTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// consumerProcess is a child consumer.
type consumerProcess struct {
	cmd      *exec.Cmd
	applied  *appliedKeys
	active   chan struct{}
	activeAt time.Time // when it printed "active"
	stats    chan pgcdc.Stats
}

// appliedKeys is the set of keys child consumers said they applied.
type appliedKeys struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (a *appliedKeys) add(keys []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		a.keys[k] = true
	}
}

func (a *appliedKeys) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.keys)
}

func startChild(t *testing.T, f *fixture, name string, applied *appliedKeys) *consumerProcess {
	t.Helper()
	cfg, err := json.Marshal(childConfig{URL: f.url, Name: f.name, Prefix: f.prefix, Rules: f.rules,
		Publication: f.opts.Publication, Slot: f.opts.Slot, RetryInterval: f.opts.RetryInterval, StatusInterval: f.opts.StatusInterval})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	cmd.Stderr = &prefixWriter{t: t, prefix: name + ": "}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &consumerProcess{cmd: cmd, applied: applied, active: make(chan struct{}), stats: make(chan pgcdc.Stats, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "applied "):
				p.applied.add(strings.Fields(line)[1:])
			case line == "active":
				p.activeAt = time.Now()
				close(p.active)
			case strings.HasPrefix(line, "{"):
				var s pgcdc.Stats
				if json.Unmarshal([]byte(line), &s) == nil {
					p.stats <- s
				}
			}
		}
		close(p.stats)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return p
}

type prefixWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(b), nil
}

var _ io.Writer = (*prefixWriter)(nil)

// TestKillNineDuringBurst: the active consumer runs in a child process and
// is killed with SIGKILL during a burst of 1,000 single-row transactions; a
// standby (another child process, started before) takes the slot. Every
// update's invalidation reaches both nodes (counted per key, from the
// messages they received), every node ends serving every row's new value,
// and no node served a row's old value longer after its commit than the
// bound plus the takeover time.
func TestKillNineDuringBurst(t *testing.T) {
	const rows = 1000
	f := newFixture(t, rows)
	// A standby tries the slot every 250ms; the active consumer reports
	// its position every 50ms, so that it has confirmed part of the burst
	// when it is killed.
	f.opts.RetryInterval = 250 * time.Millisecond
	// The key only: with the fixture's tenant tag, every update would
	// invalidate half the rows, and the rows committed during the takeover
	// would not be cached any more to be served old.
	f.rules = []pgcdc.Rule{{Table: f.table, Keys: []string{"p:{id}"}}}
	f.opts.StatusInterval = 50 * time.Millisecond
	a, b := f.newNode(nil), f.newNode(nil)
	nodes := []*node{a, b}
	// Cache every row on both nodes: read until a whole pass runs no
	// factory (a read that overlaps the other node's announcement of the
	// same key is not kept in L1, so one pass may not be enough).
	for pass := 0; ; pass++ {
		before := a.factories.Load() + b.factories.Load()
		for id := 1; id <= rows; id++ {
			for _, n := range nodes {
				n.read(t, id)
			}
		}
		if a.factories.Load()+b.factories.Load() == before {
			break
		}
		if pass == 10 {
			t.Fatal("the nodes do not keep the rows in L1")
		}
	}

	applied := &appliedKeys{keys: map[string]bool{}}
	active := startChild(t, f, "consumer-1", applied)
	select {
	case <-active.active:
	case <-time.After(20 * time.Second):
		t.Fatal("the first consumer did not take the slot")
	}
	standby := startChild(t, f, "consumer-2", applied)

	// Readers: every node reads (Get: no factory, so the readers do not
	// reload and announce rows, which would make the nodes drop each
	// other's copies), over and over, every committed row it has not yet
	// seen invalidated: a read of a row's old value after its commit
	// records how long after.
	var committed [rows + 1]atomic.Int64 // unix nanos, 0: not yet
	var last atomic.Int64                // the last row committed
	var worst, worstID atomic.Int64
	var staleReads atomic.Int64
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopReaders) }); readers.Wait() }
	t.Cleanup(stop) // before the nodes close, if the test fails early
	for _, n := range nodes {
		readers.Go(func() {
			var seen [rows + 1]bool // invalidated on n
			low := 1                // every row below is seen
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				top := int(last.Load())
				for id := low; id <= top; id++ {
					if seen[id] {
						continue
					}
					at := committed[id].Load()
					v, found, err := core.Get[string](context.Background(), n.Cache, fmt.Sprint("p:", id))
					switch {
					case err != nil:
					case found && v == "0":
						staleReads.Add(1)
						if late := time.Now().UnixNano() - at; late > worst.Load() {
							worst.Store(late)
							worstID.Store(int64(id))
						}
					default:
						seen[id] = true
					}
				}
				for low <= top && seen[low] {
					low++
				}
				time.Sleep(100 * time.Microsecond)
			}
		})
	}

	burstStart := time.Now()
	var killedAt time.Time
	for id := 1; id <= rows; id++ {
		f.exec(`UPDATE `+f.table+` SET v = '1' WHERE id = $1`, id)
		committed[id].Store(time.Now().UnixNano())
		last.Store(int64(id))
		if id == 300 {
			if err := active.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt = time.Now()
		}
		time.Sleep(time.Millisecond) // a burst of about 1,000 commits a second
	}
	burstEnd := time.Now()
	select {
	case <-standby.active:
	case <-time.After(bound):
		t.Fatal("the standby did not take the slot")
	}
	t.Logf("burst of %d updates took %v; the active consumer was killed after update 300; the standby held the slot %v later",
		rows, burstEnd.Sub(burstStart).Round(time.Millisecond), standby.activeAt.Sub(killedAt).Round(time.Millisecond))

	// Every update's invalidation was applied and published, by one
	// consumer or the other (counted from what they printed).
	waitFor(t, 30*time.Second, "every row's invalidation to be applied", func() bool { return applied.len() == rows })
	stop()
	// Every node serves every row's new value.
	for _, n := range nodes {
		for id := 1; id <= rows; id++ {
			waitFor(t, bound, fmt.Sprintf("%s to serve row %d's new value", n.InstanceID(), id), func() bool { return n.read(t, id) == "1" })
		}
	}
	// And each node received each invalidation, unless its backplane lost
	// messages (Redis pub/sub delivers at most once; core then expires the
	// node's whole L1, which the values above checked).
	for _, n := range nodes {
		received := 0
		for id := 1; id <= rows; id++ {
			if n.got.count("remove", fmt.Sprint("p:", id)) > 0 {
				received++
			}
		}
		st := n.Stats()
		t.Logf("%s received the invalidation of %d of %d rows (loss events %d)", n.InstanceID(), received, rows, st.LossEvents)
		if received != rows && st.LossEvents == 0 {
			t.Errorf("%s received %d of %d invalidations, with no loss detected", n.InstanceID(), received, rows)
		}
	}
	_ = standby.cmd.Process.Signal(syscall.SIGTERM)
	s, ok := <-standby.stats
	if !ok {
		t.Fatal("the standby printed no stats")
	}
	_ = standby.cmd.Wait()
	_ = active.cmd.Wait()
	// Takeover: the killed consumer's socket is closed by the kernel, so
	// its walsender exits at once; the standby tries every RetryInterval.
	takeover := f.opts.RetryInterval + time.Second
	limit := bound + takeover
	t.Logf("applied: %d of %d rows' invalidations; both nodes serve every new value; standby applied %d transactions (%d retries, %d bad messages); "+
		"%d reads of an old value after its commit, the longest after %v (row %d); limit (bound %v + takeover %v): %v",
		applied.len(), rows, s.Transactions, s.Retries, s.BadMessages, staleReads.Load(), time.Duration(worst.Load()).Round(time.Millisecond), worstID.Load(), bound, takeover, limit)
	if s.Transactions == 0 || s.BadMessages != 0 {
		t.Errorf("standby stats %+v", s)
	}
	if w := time.Duration(worst.Load()); w > limit {
		t.Errorf("a node served row %d's old value %v after its commit, more than %v", worstID.Load(), w, limit)
	}
}
