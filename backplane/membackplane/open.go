package membackplane

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"

	"github.com/stratacache/strata/backplane"
)

// Scheme is the URL scheme this package registers with backplane.Register.
const Scheme = "mem"

func init() {
	backplane.Register(Scheme, openURL)
}

// named holds the process-wide buses of mem://NAME URLs. A Bus leaves it when
// its last node closes: an empty Bus holds nothing a new one would not.
var named struct {
	mu    sync.Mutex
	buses map[string]*Bus
}

// openURL opens "mem://NAME[?queue_size=N]": a new node on the process-wide
// Bus NAME, made on first use.
func openURL(ctx context.Context, u *url.URL) (backplane.Backplane, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("membackplane: open %q: %w", u.Redacted(), err)
	}
	if u.Opaque != "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return nil, fmt.Errorf("membackplane: bad URL %q: want mem://NAME, optionally with ?queue_size=N", u.Redacted())
	}
	var opts Options
	for key, values := range u.Query() {
		switch key {
		case "queue_size":
			n, err := strconv.Atoi(values[len(values)-1])
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("membackplane: bad URL %q: queue_size %q is not a positive integer", u.Redacted(), values[len(values)-1])
			}
			opts.QueueSize = n
		default:
			return nil, fmt.Errorf("membackplane: bad URL %q: unknown parameter %q (known: queue_size)", u.Redacted(), key)
		}
	}
	named.mu.Lock()
	defer named.mu.Unlock()
	b := named.buses[u.Host]
	if b == nil {
		if named.buses == nil {
			named.buses = make(map[string]*Bus)
		}
		b = newBus(u.Host)
		named.buses[u.Host] = b
	}
	return b.Connect(&opts), nil
}

// forgetIfEmpty drops b from the named buses if no node is left on it.
func forgetIfEmpty(b *Bus) {
	named.mu.Lock()
	defer named.mu.Unlock()
	b.mu.Lock()
	empty := len(b.nodes) == 0
	b.mu.Unlock()
	if empty && named.buses[b.name] == b {
		delete(named.buses, b.name)
	}
}
