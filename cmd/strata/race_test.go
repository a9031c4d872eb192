//go:build race

package main

// raceEnabled: the test binary has the race detector, so TestBinary builds
// the command with it too.
const raceEnabled = true
