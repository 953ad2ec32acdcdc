//go:build linux

package selfwatch

import "golang.org/x/sys/unix"

// affinityCPUs is the number of CPUs in the process's affinity mask now (taskset may
// have narrowed it since the runtime counted them at start), 0 when unknown.
func affinityCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0
	}
	return set.Count()
}
