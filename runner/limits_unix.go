//go:build unix

package runner

import (
	"fmt"
	"syscall"
)

// RaiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit and returns the limit
// in force afterwards. The CLI calls it once at start; a library never should behind
// its caller's back.
func RaiseFDLimit() (FDLimit, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return FDLimit{}, fmt.Errorf("read open-file limit: %w", err)
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return FDLimit{Soft: uint64(rl.Cur), Hard: uint64(rl.Max)}, fmt.Errorf("raise open-file limit to %d: %w", rl.Max, err)
		}
		rl = want
	}
	return FDLimit{Soft: uint64(rl.Cur), Hard: uint64(rl.Max)}, nil
}

// CurrentFDLimit returns the RLIMIT_NOFILE in force.
func CurrentFDLimit() (FDLimit, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return FDLimit{}, fmt.Errorf("read open-file limit: %w", err)
	}
	return FDLimit{Soft: uint64(rl.Cur), Hard: uint64(rl.Max)}, nil
}

// setRecvBuffer sets SO_RCVBUF on a socket before it connects, so that the TCP
// window a half-open client advertises stays small and the server's writes block soon.
func setRecvBuffer(fd uintptr, n int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
