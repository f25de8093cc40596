//go:build unix

package toolguard_test

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user and system CPU time: on a busy
// machine it measures work done, where wall time also measures waiting.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
