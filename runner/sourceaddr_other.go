//go:build !linux

package runner

// setBindNoPort does nothing where IP_BIND_ADDRESS_NO_PORT does not exist: the socket
// is still bound to its source address, but the port is chosen at bind time, so one
// source address's ports are shared by all destinations.
func setBindNoPort(uintptr) error { return nil }
