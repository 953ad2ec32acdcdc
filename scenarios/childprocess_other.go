//go:build !linux

package scenarios

import "syscall"

// childProcAttr sets nothing outside Linux: there a killed run may leave its reference
// child behind until the child's next write fails.
func childProcAttr() *syscall.SysProcAttr { return nil }
