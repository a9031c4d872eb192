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
// "active" when it holds the slot, and its stats as JSON when it stops.
func child() int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	t := &childTB{}
	cache := newCache(t, cfg.Name, cfg.Prefix, "", "", nil)
	defer t.cleanup()
	c, err := pgcdc.New(cfg.URL, cfg.Rules, &pgcdc.Options{Publication: cfg.Publication, Slot: cfg.Slot, RetryInterval: cfg.RetryInterval, StatusInterval: cfg.StatusInterval})
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
	active   chan struct{}
	activeAt time.Time // when it printed "active"
	stats    chan pgcdc.Stats
}

func startChild(t *testing.T, f *fixture, name string) *consumerProcess {
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
	p := &consumerProcess{cmd: cmd, active: make(chan struct{}), stats: make(chan pgcdc.Stats, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
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
	f.opts.StatusInterval = 50 * time.Millisecond
	a, b := f.newNode(nil), f.newNode(nil)
	nodes := []*node{a, b}
	for id := 1; id <= rows; id++ {
		for _, n := range nodes {
			n.read(t, id)
		}
	}

	active := startChild(t, f, "consumer-1")
	select {
	case <-active.active:
	case <-time.After(20 * time.Second):
		t.Fatal("the first consumer did not take the slot")
	}
	standby := startChild(t, f, "consumer-2")

	// Readers: every node reads every row in a loop; a read of the old
	// value after the row's commit counts how long after.
	var committed [rows + 1]atomic.Int64 // unix nanos, 0: not yet
	var worst atomic.Int64
	var worstID atomic.Int64
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	for _, n := range nodes {
		readers.Go(func() {
			for {
				for id := 1; id <= rows; id++ {
					select {
					case <-stopReaders:
						return
					default:
					}
					at := committed[id].Load()
					if at == 0 {
						continue
					}
					if n.read(t, id) == "0" {
						if late := time.Now().UnixNano() - at; late > worst.Load() {
							worst.Store(late)
							worstID.Store(int64(id))
						}
					}
				}
			}
		})
	}

	burstStart := time.Now()
	var killedAt time.Time
	for id := 1; id <= rows; id++ {
		f.exec(`UPDATE `+f.table+` SET v = '1' WHERE id = $1`, id)
		committed[id].Store(time.Now().UnixNano())
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

	// Every row's invalidation reaches both nodes.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		for id := 1; id <= rows; id++ {
			for n.got.count("remove", fmt.Sprint("p:", id)) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%s never received the invalidation of row %d", n.InstanceID(), id)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	close(stopReaders)
	readers.Wait()
	for _, n := range nodes {
		for id := 1; id <= rows; id++ {
			if v := n.read(t, id); v != "1" {
				t.Fatalf("%s serves %q for row %d, want %q", n.InstanceID(), v, id, "1")
			}
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
	t.Logf("applied: %d of %d rows invalidated on both nodes; standby applied %d transactions (%d retries, %d bad messages); "+
		"longest an old value was served after its commit: %v (row %d); limit (bound %v + takeover %v): %v",
		rows, rows, s.Transactions, s.Retries, s.BadMessages, time.Duration(worst.Load()).Round(time.Millisecond), worstID.Load(), bound, takeover, limit)
	if s.Transactions == 0 || s.BadMessages != 0 {
		t.Errorf("standby stats %+v", s)
	}
	if w := time.Duration(worst.Load()); w > limit {
		t.Errorf("a node served row %d's old value %v after its commit, more than %v", worstID.Load(), w, limit)
	}
}
