package plot

import (
	"math"
	"strconv"
)

// NiceStep rounds d up to 1, 2 or 5 times a power of ten: a step between
// ticks that reads well. It returns 1 for d <= 0, NaN or infinity.
func NiceStep(d float64) float64 {
	if !(d > 0) || math.IsInf(d, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(d)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= d*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// axis maps data values to pixels along one direction.
type axis struct {
	lo, hi   float64 // data range shown
	log      bool
	from, to float64 // pixel range: lo maps to from, hi to to
}

func (a axis) pos(v float64) float64 {
	lo, hi := a.lo, a.hi
	if a.log {
		v, lo, hi = math.Log10(math.Max(v, a.lo)), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return a.from
	}
	return a.from + (v-lo)/(hi-lo)*(a.to-a.from)
}

// ticks returns the tick values of a: about n steps of NiceStep on a linear
// axis, and 1, 2, 5 times each power of ten on a log axis (only the powers
// of ten when the range spans more than three decades).
func (a axis) ticks(n int) []float64 {
	var ts []float64
	if a.log {
		wide := a.hi/a.lo > 1000
		for p := math.Pow(10, math.Floor(math.Log10(a.lo))); p <= a.hi*(1+1e-9); p *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if wide && m != 1 {
					continue
				}
				if v := m * p; v >= a.lo*(1-1e-9) && v <= a.hi*(1+1e-9) {
					ts = append(ts, v)
				}
			}
		}
		return ts
	}
	step := NiceStep((a.hi - a.lo) / float64(max(n, 1)))
	for i := math.Ceil(a.lo/step - 1e-9); i*step <= a.hi+step*1e-9; i++ {
		v := i * step
		if v == 0 {
			v = 0 // not -0
		}
		ts = append(ts, v)
		if len(ts) > 100 {
			break
		}
	}
	return ts
}

// newAxis returns an axis covering the values vs (with zero included when
// fromZero), rounded out to ticks on a linear axis and to powers of ten on
// a log one. Non-finite values, and values <= 0 on a log axis, are
// ignored; with no value left the range is [0, 1] ([1, 10] on a log axis).
func newAxis(vs []float64, log, fromZero bool, from, to float64) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) || (log && v <= 0) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	a := axis{log: log, from: from, to: to}
	switch {
	case log && lo > hi:
		a.lo, a.hi = 1, 10
	case log:
		a.lo = math.Pow(10, math.Floor(math.Log10(lo)))
		a.hi = math.Pow(10, math.Ceil(math.Log10(hi)))
		if a.hi <= a.lo {
			a.hi = a.lo * 10
		}
	default:
		if lo > hi {
			lo, hi = 0, 1
		}
		if fromZero {
			lo, hi = math.Min(lo, 0), math.Max(hi, 0)
		}
		if hi == lo {
			lo, hi = lo-1, hi+1
		}
		step := NiceStep((hi - lo) / 5)
		a.lo, a.hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	}
	return a
}

// FormatNumber writes v with at most three significant digits and an SI
// suffix (k, M, G) when it is large: 0.25, 12.5, 850, 1.2k, 35M.
func FormatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e4:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string {
	a := math.Abs(v)
	prec := 0
	switch {
	case a < 1:
		prec = 3
	case a < 10:
		prec = 2
	case a < 100:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if prec > 0 {
		for s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
		if s[len(s)-1] == '.' {
			s = s[:len(s)-1]
		}
	}
	return s
}
