package proxy

import (
	"os"
	"syscall"
)

// nginxSysProcAttr puts nginx in its own process group, so that its workers can be killed
// with it, and asks the kernel to send it SIGTERM (nginx's fast shutdown) should this
// process die without stopping it: a crashed or killed test leaves no nginx behind.
func nginxSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// signalNginx sends SIGTERM to the master, or SIGKILL to the master's whole process group.
func signalNginx(p *os.Process, kill bool) error {
	if kill {
		return syscall.Kill(-p.Pid, syscall.SIGKILL)
	}
	return p.Signal(syscall.SIGTERM)
}
