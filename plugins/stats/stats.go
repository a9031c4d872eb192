package stats

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/stratacache/strata/core"
)

// Plugin counts the events of one cache. Install it in core.Options.Plugins;
// it is also the cache's observer. All methods are safe for concurrent use.
type Plugin struct {
	state  atomic.Pointer[started]
	hits   stripedCounter
	stale  stripedCounter
	events [numEventSlots]paddedCounter
	// sendErrors counts EventBackplaneSent with an error.
	sendErrors paddedCounter
}

// started is what Start learned.
type started struct {
	cache   *core.Cache
	name    string
	since   time.Time
	stopped atomic.Bool
}

var (
	_ core.Plugin      = (*Plugin)(nil)
	_ core.HitObserver = (*Plugin)(nil)
)

// New returns a Plugin, to be installed in one cache.
func New() *Plugin { return &Plugin{} }

// Start is called by core.New. It fails if the plugin already serves
// another cache.
func (p *Plugin) Start(c *core.Cache) error {
	st := &started{cache: c, name: c.Name(), since: time.Now()}
	if !p.state.CompareAndSwap(nil, st) {
		return fmt.Errorf("stats: the plugin already counts cache %q; use one Plugin per cache", p.state.Load().name)
	}
	return nil
}

// Stop is called by Cache.Close. The counts stay readable; the health
// status becomes "stopped".
func (p *Plugin) Stop() error {
	if st := p.state.Load(); st != nil {
		st.stopped.Store(true)
	}
	return nil
}

// mine reports whether cache is the one the plugin counts.
func (p *Plugin) mine(cache string) bool {
	st := p.state.Load()
	return st != nil && st.name == cache
}

// OpStart returns ctx: the plugin counts events, not operations.
func (p *Plugin) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }

// OpEnd does nothing.
func (p *Plugin) OpEnd(context.Context, *core.OpInfo) {}

// HitRecorder returns the counter of the L1 hits of the cache named cache:
// they are counted on core's fast path, with no OpStart/OpEnd.
func (p *Plugin) HitRecorder(cache string) core.HitRecorder { return hitRecorder{p, cache} }

// hitRecorder counts the hits of one cache, if it is the plugin's.
type hitRecorder struct {
	p     *Plugin
	cache string
}

// WantsHitOp returns false: hits are counted by Hit.
func (hitRecorder) WantsHitOp(context.Context) bool { return false }

// Hit counts an L1 hit that got no OpStart/OpEnd. It does not allocate.
func (h hitRecorder) Hit(_ context.Context, stale bool) {
	if !h.p.mine(h.cache) {
		return
	}
	if stale {
		h.p.stale.add()
	} else {
		h.p.hits.add()
	}
}

// Event counts one event.
func (p *Plugin) Event(_ context.Context, ev core.Event) {
	if !p.mine(ev.Cache) {
		return
	}
	switch {
	case ev.Kind == core.EventHit:
		p.hits.add()
	case ev.Kind == core.EventStaleHit:
		p.stale.add()
	case ev.Kind == core.EventBackplaneSent && ev.Err != nil:
		p.sendErrors.v.Add(1)
	case ev.Kind == core.EventBackplaneBehind && ev.Key != "behind":
		// caught_up: the episode was counted when it began.
	case int(ev.Kind) < numEventSlots:
		p.events[ev.Kind].v.Add(1)
	}
}

// numEventSlots bounds the event kinds counted (core has fewer).
const numEventSlots = 32

// paddedCounter is a counter alone on its cache line.
type paddedCounter struct {
	v atomic.Uint64
	_ [56]byte
}

// stripedCounter is a counter split into stripes on their own cache lines,
// so that cores rarely write the same line. Reading sums them.
type stripedCounter struct {
	stripes [numStripes]paddedCounter
}

const numStripes = 16

func (c *stripedCounter) add() { c.stripes[stripe()].v.Add(1) }

// stripe picks the stripe of the calling goroutine from the address of its
// stack: each goroutine mostly writes its own stripe, without reading any
// shared state (a shared random source would be one more contended line).
// Goroutine stacks are at least 2 KiB apart, hence the shift; the multiply
// mixes the bits.
func stripe() uintptr {
	var b byte
	h := uint64(uintptr(unsafe.Pointer(&b)) >> 11)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return uintptr(h & (numStripes - 1))
}

func (c *stripedCounter) load() uint64 {
	var n uint64
	for i := range c.stripes {
		n += c.stripes[i].v.Load()
	}
	return n
}
