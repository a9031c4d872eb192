package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// Every random decision of a run comes from the seed. The plan (nodes, keys,
// operations, fault windows) is drawn in order from one generator; each
// decision taken while the run goes on (a message's delay, an L2 call's
// latency, a factory's duration) comes from a generator of its own, seeded
// from the seed and the identity of the event it decides (which message to
// which node, which call at which virtual instant). So a decision never
// depends on which goroutine asked first.

// hasher builds a 64-bit key from the seed and an event's identity
// (FNV-1a, then a splitmix64 finaliser).
type hasher struct{ h uint64 }

func newHasher(seed uint64, what string) hasher {
	h := hasher{h: 14695981039346656037}
	h.u64(seed)
	h.str(what)
	return h
}

func (h *hasher) u64(v uint64) {
	for i := 0; i < 8; i++ {
		h.h ^= v & 0xff
		h.h *= 1099511628211
		v >>= 8
	}
}

func (h *hasher) i64(v int64) { h.u64(uint64(v)) }

func (h *hasher) str(s string) {
	for i := 0; i < len(s); i++ {
		h.h ^= uint64(s[i])
		h.h *= 1099511628211
	}
	h.h ^= 0xff // separator
	h.h *= 1099511628211
}

func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// draw is a small generator for one event's decisions.
type draw struct{ r *rand.Rand }

func (h hasher) draw() draw {
	a := mix(h.h)
	return draw{r: rand.New(rand.NewPCG(a, mix(a^0x5851f42d4c957f2d)))}
}

// chance reports true with probability p.
func (d draw) chance(p float64) bool { return p > 0 && d.r.Float64() < p }

// dur returns a duration in [lo, hi], at nanosecond resolution, so that
// two events rarely fall on the same virtual instant.
func (d draw) dur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(d.r.Int64N(int64(hi-lo)+1))
}

// logDur returns a duration between lo and hi, log-uniform: small values as
// often as large ones (lo > 0).
func (d draw) logDur(lo, hi time.Duration) time.Duration {
	if hi <= lo || lo <= 0 {
		return d.dur(lo, hi)
	}
	f := math.Log(float64(lo)) + d.r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))
	return time.Duration(math.Exp(f)) + time.Duration(d.r.Int64N(1000))
}

func (d draw) intn(n int) int { return d.r.IntN(n) }

func (d draw) float() float64 { return d.r.Float64() }

// pick returns one of the weights' indexes, in proportion to them.
func (d draw) pick(weights ...float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := d.r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}
