//go:build !linux

package selfwatch

import "runtime"

// affinityCPUs is the CPUs the runtime found usable at start (no affinity call here).
func affinityCPUs() int { return runtime.NumCPU() }
