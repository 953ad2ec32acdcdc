//go:build !unix

package selfwatch

import (
	"runtime/metrics"
	"time"
)

// processCPU is the runtime's estimate of the CPU time its Ps were busy (without
// getrusage here): the total available to the process minus the idle time.
func processCPU() (time.Duration, error) {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	busy := s[0].Value.Float64() - s[1].Value.Float64()
	return time.Duration(busy * float64(time.Second)), nil
}
