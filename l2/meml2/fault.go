package meml2

import (
	"context"
	"time"
)

// Fault makes a Store misbehave, for tests of the code that uses it. Set it
// with SetFault; the zero Fault does nothing.
type Fault struct {
	// Err, when not nil, is returned (wrapped, so errors.Is works) by every
	// Get, GetMany, Set, SetIfNewer and Delete call, after Delay.
	Err error
	// Delay, when positive, is how long every such call waits before doing
	// anything else. A call whose ctx is done while it waits returns at once
	// with an error wrapping ctx.Err(), having done nothing.
	Delay time.Duration
}

// SetFault makes every later data call of this handle (not of other handles
// on the same shared table) behave as f says, until ClearFault or the next
// SetFault. Calls already waiting out a Delay keep the fault they started
// with. It is safe for concurrent use with every other method.
func (s *Store) SetFault(f Fault) {
	if f == (Fault{}) {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// ClearFault makes this handle behave normally again. It is safe for
// concurrent use with every other method.
func (s *Store) ClearFault() {
	s.fault.Store(nil)
}

// apply waits out f.Delay, honouring ctx, then returns f.Err.
func (f *Fault) apply(ctx context.Context) error {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return f.Err
}
