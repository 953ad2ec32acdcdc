//go:build linux

package runner

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The socket a bound dial makes has IP_BIND_ADDRESS_NO_PORT set (the kernel chose its
// port at connect time) and the receive buffer asked for.
func TestSourceAddrsDialerSetsBindNoPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	src, err := NewSourceAddrs(addrList(t, "127.0.0.7"))
	if err != nil {
		t.Fatal(err)
	}
	for _, recvBuf := range []int{0, 16384} {
		d := src.dialer(recvBuf)
		c, err := d.DialContext(ctxTimeout(t, 10*time.Second), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var noPort, rcv int
		var gerr error
		raw.Control(func(fd uintptr) {
			noPort, gerr = unix.GetsockoptInt(int(fd), unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT)
			if gerr == nil {
				rcv, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			}
		})
		if gerr != nil {
			t.Fatal(gerr)
		}
		if noPort != 1 {
			t.Errorf("IP_BIND_ADDRESS_NO_PORT = %d, want 1", noPort)
		}
		// Linux doubles the value set and reports the doubled figure.
		if recvBuf > 0 && rcv != 2*recvBuf {
			t.Errorf("SO_RCVBUF = %d, want %d", rcv, 2*recvBuf)
		}
		if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.7" {
			t.Errorf("local address %s, want 127.0.0.7", got)
		}
		c.Close()
	}
}

// A real exhaustion: sockets narrowed to two local ports (IP_LOCAL_PORT_RANGE, Linux
// 6.3+) towards one destination fail the third connect with the kernel's own error,
// which classifyDial turns into ErrPortsExhausted with its advice.
func TestPortExhaustionFromTheKernelIsItsOwnClass(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9)}
	const lo, hi = 45000, 45001
	d := net.Dialer{LocalAddr: src, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = setBindNoPort(fd)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_LOCAL_PORT_RANGE, lo|hi<<16)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 3 {
		c, err := d.DialContext(ctxTimeout(t, 10*time.Second), "tcp", ln.Addr().String())
		if err == nil {
			conns = append(conns, c)
			continue
		}
		if errors.Is(err, unix.ENOPROTOOPT) {
			t.Skipf("IP_LOCAL_PORT_RANGE unsupported here: %v", err)
		}
		if i < 2 {
			t.Fatalf("dial %d of a 2-port range: %v", i, err)
		}
		t.Logf("kernel: %v", err)
		cerr := classifyDial(err, src)
		if errorClass(cerr, ErrRead) != ErrPortsExhausted || !strings.Contains(cerr.Error(), ErrPortsExhaustedAdvice) {
			t.Errorf("kernel error %v classified as %s: %v", err, errorClass(cerr, ErrRead), cerr)
		}
		return
	}
	t.Fatalf("three connections from a 2-port range: %v", conns)
}
