//go:build race

package audit_test

// raceEnabled is true when the tests run with the race detector, which
// makes the exhaustive tests slow enough to sample instead.
const raceEnabled = true
