//go:build unix

package selfwatch

import (
	"syscall"
	"time"
)

// processCPU is the user plus system CPU time of the whole process so far.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
