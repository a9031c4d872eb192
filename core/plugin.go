package core

import (
	"fmt"
)

// Plugin adds optional behaviour to a cache, built only on its public API and
// hooks (a plugin that also implements Observer is added to the cache's
// observers). New starts the plugins in order once the cache is ready; Close
// stops them in reverse order before closing the cache. A plugin never breaks
// the cache: an error or a panic from Start or Stop is logged and, for
// Start, reported by Cache.PluginErrors; the cache works on without it.
type Plugin interface {
	// Start is called once, by New, with the cache.
	Start(c *Cache) error
	// Stop is called once, by Close, for a plugin whose Start succeeded.
	Stop() error
}

// startPlugins starts each plugin, keeping the ones that started.
func (c *Cache) startPlugins(ps []Plugin) {
	for i, p := range ps {
		if err := safePluginCall(func() error { return p.Start(c) }); err != nil {
			err = fmt.Errorf("core: plugin %d (%T) failed to start: %w", i, p, err)
			c.pluginErrs = append(c.pluginErrs, err)
			c.logger.Error("strata: plugin failed to start; the cache works on without it", "plugin", fmt.Sprintf("%T", p), "err", err)
			continue
		}
		c.plugins = append(c.plugins, p)
	}
}

// stopPlugins stops the started plugins in reverse order.
func (c *Cache) stopPlugins() {
	for i := len(c.plugins) - 1; i >= 0; i-- {
		p := c.plugins[i]
		if err := safePluginCall(p.Stop); err != nil {
			c.logger.Error("strata: plugin failed to stop", "plugin", fmt.Sprintf("%T", p), "err", err)
		}
	}
}

// PluginErrors returns the errors of plugins that failed to start.
func (c *Cache) PluginErrors() []error { return append([]error(nil), c.pluginErrs...) }

func safePluginCall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}
