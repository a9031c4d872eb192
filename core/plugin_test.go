package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

type testPlugin struct {
	startErr  error
	panicking bool
	started   *core.Cache
	stopped   bool
	order     *[]string
	name      string
}

func (p *testPlugin) Start(c *core.Cache) error {
	if p.panicking {
		panic("plugin boom")
	}
	p.started = c
	if p.order != nil {
		*p.order = append(*p.order, "start "+p.name)
	}
	return p.startErr
}

func (p *testPlugin) Stop() error {
	p.stopped = true
	if p.order != nil {
		*p.order = append(*p.order, "stop "+p.name)
	}
	return errors.New("stop errors are only logged")
}

func TestPluginsStartAndStop(t *testing.T) {
	var order []string
	a, b := &testPlugin{name: "a", order: &order}, &testPlugin{name: "b", order: &order}
	c, err := core.New(core.Options{Plugins: []core.Plugin{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if a.started != c || b.started != c {
		t.Fatal("plugins not started with the cache")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "stop b", "stop a"}
	if len(order) != 4 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] || order[3] != want[3] {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestFailingPluginsDoNotBreakTheCache(t *testing.T) {
	failing := &testPlugin{startErr: errors.New("no config")}
	panicking := &testPlugin{panicking: true}
	c := newCache(t, core.Options{Plugins: []core.Plugin{failing, panicking}})
	if errs := c.PluginErrors(); len(errs) != 2 {
		t.Fatalf("PluginErrors = %v, want both failures", errs)
	}
	if v := mustGetOrSet(t, c, "k", constant(1)); v != 1 {
		t.Fatal("cache broken by failing plugins")
	}
	c.Close()
	if failing.stopped {
		t.Fatal("a plugin that failed to start was stopped")
	}
}

// observingPlugin is a plugin that is also an observer.
type observingPlugin struct {
	testPlugin
	recorder
}

func TestPluginThatObserves(t *testing.T) {
	p := &observingPlugin{}
	c := newCache(t, core.Options{Plugins: []core.Plugin{p}})
	core.GetOrSet(context.Background(), c, "k", constant(1))
	if p.count(core.OpGetOrSet) != 1 {
		t.Fatal("a plugin implementing Observer was not added to the observers")
	}
}

// busyPlugin is an observing plugin whose Start uses the cache, then fails
// (err, or a panic) or succeeds.
type busyPlugin struct {
	hitCounter
	err   error
	panic bool
}

func (p *busyPlugin) Start(c *core.Cache) error {
	ctx := context.Background()
	core.Set(ctx, c, "during-start", 1)
	core.GetOrSet(ctx, c, "during-start", constant(1))
	core.GetOrSet(ctx, c, "missing", failing[int](errors.New("boom")))
	if p.panic {
		panic("half-initialised")
	}
	return p.err
}

func (p *busyPlugin) Stop() error { return nil }

// plainPlugin is an observing plugin that is not a HitObserver.
type plainPlugin struct {
	recorder
	err error
}

func (p *plainPlugin) Start(*core.Cache) error { return p.err }
func (p *plainPlugin) Stop() error             { return nil }

// useCache runs operations that tell observers about ops, events and hits.
func useCache(t *testing.T, c *core.Cache) {
	t.Helper()
	ctx := context.Background()
	mustGetOrSet(t, c, "k", constant(1)) // miss
	for range 3 {
		mustGetOrSet(t, c, "k", constant(1)) // hits
	}
	core.GetOrSet(ctx, c, "bad", failing[int](errors.New("boom"))) // factory_error
	core.Set(ctx, c, "s", 2)
	c.Remove(ctx, "s")
}

func TestPluginThatFailedToStartIsNoObserver(t *testing.T) {
	failed, panicked := &busyPlugin{err: errors.New("no config")}, &busyPlugin{panic: true}
	failedPlain := &plainPlugin{err: errors.New("no config")}
	ok := &busyPlugin{}
	c := newCache(t, core.Options{Plugins: []core.Plugin{failed, panicked, failedPlain, ok}})
	if n := len(c.PluginErrors()); n != 3 {
		t.Fatalf("%d plugin errors, want 3: %v", n, c.PluginErrors())
	}
	useCache(t, c)
	for name, r := range map[string]*recorder{"failed": &failed.recorder, "panicked": &panicked.recorder, "failed plain": &failedPlain.recorder} {
		if r.starts != 0 || len(r.ops) != 0 || len(r.events) != 0 {
			t.Errorf("%s plugin observed the cache: %d OpStarts, ops %v, events %v", name, r.starts, r.ops, r.kinds())
		}
	}
	if failed.hits != 0 || panicked.hits != 0 {
		t.Errorf("plugins that failed to start recorded hits: %d, %d", failed.hits, panicked.hits)
	}
	if ok.count(core.OpGetOrSet) != 2 || ok.count(core.OpSet) != 1 || ok.count(core.OpRemove) != 1 ||
		!ok.has(core.EventFactoryError) || ok.hits != 3 {
		t.Errorf("started plugin: %d GetOrSet ops, %d Set, %d Remove, events %v, %d hits; want 2, 1, 1, factory_error, 3",
			ok.count(core.OpGetOrSet), ok.count(core.OpSet), ok.count(core.OpRemove), ok.kinds(), ok.hits)
	}
	if ok.count(core.OpSet) != 1 || ok.starts != len(ok.ops) {
		t.Errorf("started plugin saw its own Start's operations or unpaired ones: %d OpStarts, %d OpEnds", ok.starts, len(ok.ops))
	}
}

// A plugin that failed to start and is not a HitObserver must not cost the
// other observers the hit fast path.
func TestFailedPluginKeepsTheHitFastPath(t *testing.T) {
	h := &hitCounter{}
	c := newCache(t, core.Options{Observers: []core.Observer{h}, Plugins: []core.Plugin{&plainPlugin{err: errors.New("no config")}}})
	mustGetOrSet(t, c, "k", constant(1))
	starts := h.starts
	for range 5 {
		mustGetOrSet(t, c, "k", constant(1))
	}
	if h.hits != 5 || h.starts != starts {
		t.Fatalf("hits %d, OpStarts %d after 5 hits; want 5 Hit calls and no new OpStart", h.hits, h.starts-starts)
	}
}

// A started plugin that is not a HitObserver sees every hit as an operation.
func TestStartedPlainPluginSeesHits(t *testing.T) {
	h, p := &hitCounter{}, &plainPlugin{}
	c := newCache(t, core.Options{Observers: []core.Observer{h}, Plugins: []core.Plugin{p}})
	for range 4 {
		mustGetOrSet(t, c, "k", constant(1))
	}
	if n := p.count(core.OpGetOrSet); n != 4 || h.count(core.OpGetOrSet) != 4 {
		t.Fatalf("plugin saw %d GetOrSet ops, the HitObserver %d; want 4 each", n, h.count(core.OpGetOrSet))
	}
}

// slowStartPlugin starts an operation in its Start and returns while it is
// under way.
type slowStartPlugin struct {
	recorder
	release chan struct{}
	done    chan struct{}
}

func (p *slowStartPlugin) Start(c *core.Cache) error {
	entered := make(chan struct{})
	go func() {
		defer close(p.done)
		core.GetOrSet(context.Background(), c, "slow", func(context.Context, *core.FactoryContext[int]) (int, error) {
			close(entered)
			<-p.release
			return 1, nil
		})
	}()
	<-entered
	return nil
}

func (p *slowStartPlugin) Stop() error { return nil }

func TestPluginSeesNoHalfOfAnOperationUnderWayAtStart(t *testing.T) {
	p := &slowStartPlugin{release: make(chan struct{}), done: make(chan struct{})}
	c := newCache(t, core.Options{Plugins: []core.Plugin{p}})
	close(p.release)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the operation started in Start did not end")
	}
	mustGetOrSet(t, c, "k", constant(1))
	gets := p.count(core.OpGetOrSet)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.starts != len(p.ops) || gets != 1 {
		t.Fatalf("%d OpStarts, %d OpEnds, %d GetOrSet ops; want as many starts as ends, one GetOrSet", p.starts, len(p.ops), gets)
	}
	for _, op := range p.ops {
		if op.Key != "k" {
			t.Fatalf("told about the end of %v %q, under way when Start returned", op.Op, op.Key)
		}
	}
	for _, ev := range p.events {
		if ev.Key == "slow" {
			t.Fatalf("told about %v of an operation it did not see start", ev)
		}
	}
}
