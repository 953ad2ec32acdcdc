//go:build !linux

package cli

import "syscall"

// childProcAttr is nil where there is no parent-death signal: a `serve --procs` child
// outlives a parent killed with SIGKILL there (SIGINT/SIGTERM still stop every child).
func childProcAttr() *syscall.SysProcAttr { return nil }
