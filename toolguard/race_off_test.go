//go:build !race

package toolguard_test

// raceOn reports whether the race detector is on.
const raceOn = false
