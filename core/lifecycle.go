package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lifecycle tracks a cache's background goroutines and its closing: every
// goroutine the cache starts goes through goBackground, so that Close can
// cancel and wait for them all.
type lifecycle struct {
	closed    atomic.Bool
	closeOnce sync.Once
	timeout   time.Duration
	// base is the parent of every background context; Close cancels it.
	base   context.Context
	cancel context.CancelFunc
	// bg counts background goroutines; mu orders their start with Close,
	// which sets closing.
	bg      sync.WaitGroup
	mu      sync.Mutex
	closing bool
}

func newLifecycle(timeout time.Duration) *lifecycle {
	l := &lifecycle{timeout: timeout}
	l.base, l.cancel = context.WithCancel(context.Background())
	return l
}

// goBackground runs fn on a goroutine that Close waits for, unless the cache
// is closing; it reports whether it did.
func (l *lifecycle) goBackground(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		fn()
	}()
	return true
}

// inBackground runs fn on a background goroutine with a context that keeps
// ctx's values, is not cancelled with it, and is cancelled by Close.
func (l *lifecycle) inBackground(ctx context.Context, fn func(context.Context)) bool {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ok := l.goBackground(func() {
		defer cancel()
		stop := context.AfterFunc(l.base, cancel)
		defer stop()
		fn(bctx)
	})
	if !ok {
		cancel()
	}
	return ok
}

// stop marks the cache closed, cancels the background context, and waits
// up to the close timeout for the background goroutines, after calling
// release (which closes what they may be blocked on).
func (l *lifecycle) stop(release func()) error {
	l.closed.Store(true)
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.cancel()
	release()
	done := make(chan struct{})
	go func() { l.bg.Wait(); close(done) }()
	t := time.NewTimer(l.timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return &CloseTimeoutError{Timeout: l.timeout}
	}
}

// CloseTimeoutError is returned by Close when background work (factories
// ignoring their cancelled context) did not stop within the timeout.
type CloseTimeoutError struct{ Timeout time.Duration }

func (e *CloseTimeoutError) Error() string {
	return "core: close: background factories still running after " + e.Timeout.String()
}
