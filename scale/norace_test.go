//go:build !race

package scale

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
