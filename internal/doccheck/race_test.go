//go:build race

package doccheck

// raceEnabled: the test binary has the race detector, so the snippets are
// compiled with it too, reusing the packages go test -race compiled.
const raceEnabled = true
