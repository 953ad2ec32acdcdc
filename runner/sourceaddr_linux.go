//go:build linux

package runner

import "golang.org/x/sys/unix"

// setBindNoPort sets IP_BIND_ADDRESS_NO_PORT before the dialer binds the socket to
// its source address: the kernel then chooses the local port at connect time, for
// the destination at hand, instead of reserving one for every destination at bind
// time. The option is at the SOL_IP level for IPv4 and IPv6 sockets alike.
func setBindNoPort(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
}
