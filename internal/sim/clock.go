package sim

import (
	"time"
)

// Each node has a clock of its own (core.Options.Clock): the virtual time of
// the bubble, offset by the node's skew and by the clock steps active at that
// instant. A node keeps its clock across restarts (it is the machine's).

// clockSched is the offset schedule of one node's clock.
type clockSched struct {
	t0    time.Time
	skew  time.Duration
	steps []FaultSpec // FClockStep windows of the node
}

// offset is the clock's offset at at.
func (s *clockSched) offset(at time.Duration) time.Duration {
	o := s.skew
	for _, f := range s.steps {
		if at >= f.Start && (f.Stay || at < f.End) {
			o += f.D
		}
	}
	return o
}

// read is what the clock reads at at, in Unix nanoseconds.
func (s *clockSched) read(at time.Duration) int64 {
	return s.t0.Add(at + s.offset(at)).UnixNano()
}

// maxRead is the highest the clock read at any instant up to at: a node's
// stamps are strictly increasing, so a version it gives at at is at most
// this (plus a nanosecond per stamp taken since).
func (s *clockSched) maxRead(at time.Duration) int64 {
	m := s.read(at)
	for _, f := range s.steps {
		for _, b := range []time.Duration{f.Start, f.End} {
			if b > 0 && b <= at {
				m = max(m, s.read(b-1))
			}
		}
	}
	return m
}

// simClock is a node's core.Clock.
type simClock struct{ s *clockSched }

func (c simClock) Now() time.Time {
	now := time.Now()
	return now.Add(c.s.offset(now.Sub(c.s.t0)))
}
