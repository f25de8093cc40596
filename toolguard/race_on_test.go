//go:build race

package toolguard_test

// raceOn reports whether the race detector is on: it slows allocation-heavy
// code unevenly, so timing ratios mean nothing under it.
const raceOn = true
