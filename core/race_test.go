//go:build race

package core_test

// raceEnabled: the test binary has the race detector, so what a test
// compiles with the go command (TestTypedHandleWrongTypesDoNotCompile's
// export data) is compiled with it too, reusing what go test -race built.
const raceEnabled = true
