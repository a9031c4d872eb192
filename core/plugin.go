package core

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// Plugin adds optional behaviour to a cache, built only on its public API and
// hooks. New starts the plugins in order once the cache is ready; Close
// stops them in reverse order before closing the cache. A plugin never breaks
// the cache: an error or a panic from Start or Stop is logged and, for
// Start, reported by Cache.PluginErrors; the cache works on without it.
//
// A plugin that also implements Observer observes the cache, after
// Options.Observers, from the moment its Start returns nil: it is told
// nothing before (not even about what its own Start does with the cache),
// and nothing ever if Start failed. An operation already under way when
// Start returned is not passed on, so OpStart and OpEnd always pair up. A
// plugin that is a HitObserver is asked for its HitRecorder once, just
// after its Start succeeded.
type Plugin interface {
	// Start is called once, by New, with the cache.
	Start(c *Cache) error
	// Stop is called once, by Close, for a plugin whose Start succeeded.
	Stop() error
}

// pluginObservers returns, for each plugin of ps, the gate that makes it an
// observer of the cache named cache once it has started (nil for a plugin
// that is not an Observer).
func pluginObservers(ps []Plugin, cache string) []*pluginObserver {
	gates := make([]*pluginObserver, len(ps))
	for i, p := range ps {
		if ob, ok := p.(Observer); ok {
			gates[i] = &pluginObserver{ob: ob, cache: cache}
		}
	}
	return gates
}

// startPlugins starts each plugin, keeping the ones that started, and opens
// the gates (from pluginObservers) of those that observe.
// pluginSet holds the plugins of a cache that started, and the errors of
// those that did not.
type pluginSet struct {
	started []Plugin
	errs    []error
}

func (ps *pluginSet) start(c *Cache, plugins []Plugin, gates []*pluginObserver) {
	for i, p := range plugins {
		if err := safePluginCall(func() error { return p.Start(c) }); err != nil {
			err = fmt.Errorf("core: plugin %d (%T) failed to start: %w", i, p, err)
			ps.errs = append(ps.errs, err)
			c.logger.Error("strata: plugin failed to start; the cache works on without it", "plugin", fmt.Sprintf("%T", p), "err", err)
			if gates[i] != nil {
				gates[i].state.Store(pluginFailed)
			}
			continue
		}
		ps.started = append(ps.started, p)
		if g := gates[i]; g != nil {
			if h, ok := g.ob.(HitObserver); ok {
				g.hits = h.HitRecorder(g.cache)
			}
			g.state.Store(pluginStarted) // publishes g.hits
		}
	}
}

// stopPlugins stops the started plugins in reverse order.
func (ps *pluginSet) stop(logger *slog.Logger) {
	for i := len(ps.started) - 1; i >= 0; i-- {
		p := ps.started[i]
		if err := safePluginCall(p.Stop); err != nil {
			logger.Error("strata: plugin failed to stop", "plugin", fmt.Sprintf("%T", p), "err", err)
		}
	}
}

// PluginErrors returns the errors of plugins that failed to start.
func (c *Cache) PluginErrors() []error { return append([]error(nil), c.plugins.errs...) }

func safePluginCall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// The states of a plugin that observes.
const (
	pluginPending int32 = iota // Start has not returned yet
	pluginStarted
	pluginFailed
)

// pluginObserver is a plugin that implements Observer, as the cache's
// observers hold it: it passes on what the cache tells it only while the
// plugin's Start has succeeded. It is a HitObserver whatever the plugin is,
// so that a plugin that is not one costs the hits of the cache their fast
// path only once it has started.
type pluginObserver struct {
	ob    Observer
	cache string
	state atomic.Int32
	// hits is the plugin's HitRecorder (nil: it is not a HitObserver), set
	// before state becomes pluginStarted.
	hits HitRecorder
	// skipped is set once an OpStart was not passed on while pending: the
	// operation's context then carries skippedOp{g}, and its events and
	// OpEnd are not passed on either.
	skipped atomic.Bool
}

// skippedOp marks the context of an operation whose OpStart a gate did not
// pass on.
type skippedOp struct{ g *pluginObserver }

// sees reports whether the plugin is told about the operation of ctx.
func (g *pluginObserver) sees(ctx context.Context) bool {
	if g.state.Load() != pluginStarted {
		return false
	}
	return !g.skipped.Load() || ctx.Value(skippedOp{g}) == nil
}

func (g *pluginObserver) OpStart(ctx context.Context, op *OpInfo) context.Context {
	switch g.state.Load() {
	case pluginStarted:
		return g.ob.OpStart(ctx, op)
	case pluginPending:
		g.skipped.Store(true)
		return context.WithValue(ctx, skippedOp{g}, true)
	}
	return ctx // failed: nothing is ever passed on
}

func (g *pluginObserver) OpEnd(ctx context.Context, op *OpInfo) {
	if g.sees(ctx) {
		g.ob.OpEnd(ctx, op)
	}
}

func (g *pluginObserver) Event(ctx context.Context, ev Event) {
	if g.sees(ctx) {
		g.ob.Event(ctx, ev)
	}
}

// HitRecorder returns the gate itself: hits are bound to one cache already.
func (g *pluginObserver) HitRecorder(string) HitRecorder { return g }

// WantsHitOp reports what the started plugin's recorder says, and true for
// a started plugin that is not a HitObserver: it sees every hit as an
// operation.
func (g *pluginObserver) WantsHitOp(ctx context.Context) bool {
	if g.state.Load() != pluginStarted {
		return false
	}
	return g.hits == nil || g.hits.WantsHitOp(ctx)
}

func (g *pluginObserver) Hit(ctx context.Context, stale bool) {
	if g.state.Load() == pluginStarted && g.hits != nil {
		g.hits.Hit(ctx, stale)
	}
}
