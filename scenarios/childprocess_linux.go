package scenarios

import "syscall"

// childProcAttr makes the kernel send the reference child SIGTERM when the run dies,
// however it dies (even SIGKILL), so that no server outlives the run that started it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
