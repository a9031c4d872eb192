package core_test

import (
	"context"
	"errors"
	"testing"

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
