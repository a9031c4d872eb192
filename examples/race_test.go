//go:build race

package examples_test

// raceEnabled: the test binary has the race detector, so the examples are
// built with it too.
const raceEnabled = true
