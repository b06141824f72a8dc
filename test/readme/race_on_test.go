//go:build race

package readme

// raceEnabled: the pgrouter binary is built with -race too, so it shares the
// build cache with the test build and runs under the race detector.
const raceEnabled = true
