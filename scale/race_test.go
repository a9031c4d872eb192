//go:build race

package scale

// raceEnabled reports whether the race detector is on: it makes delivery
// several times slower, and TestFanout's bound allows for it.
const raceEnabled = true
