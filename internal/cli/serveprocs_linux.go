package cli

import "syscall"

// childProcAttr makes the kernel send a `serve --procs` child SIGTERM when its parent
// dies, however it dies (even SIGKILL), so no server outlives its supervisor.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
