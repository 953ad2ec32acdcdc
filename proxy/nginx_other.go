//go:build !linux

package proxy

import (
	"os"
	"syscall"
)

// nginxSysProcAttr sets nothing outside Linux: there a killed parent may leave nginx
// running, and Stop can only reach the master process.
func nginxSysProcAttr() *syscall.SysProcAttr { return nil }

// signalNginx asks the master to stop, or kills it.
func signalNginx(p *os.Process, kill bool) error {
	if kill {
		return p.Kill()
	}
	return p.Signal(os.Interrupt)
}
