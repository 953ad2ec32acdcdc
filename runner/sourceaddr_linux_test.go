//go:build linux

package runner

import (
	"errors"
	"math/rand/v2"
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
	// dialThree dials three times from a fresh 2-port window; it reports false when
	// another socket on this machine (a parallel test's listener, say) held one of the
	// window's ports, so that the first two could not both connect.
	dialThree := func() bool {
		lo := freshPorts(2)
		d := narrowDialer(src, lo, lo+1, true)
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
				if errors.Is(err, syscall.EADDRNOTAVAIL) {
					t.Logf("ports %d-%d: dial %d: %v (a port is held elsewhere); another window", lo, lo+1, i, err)
					return false
				}
				t.Fatalf("dial %d of a 2-port range: %v", i, err)
			}
			t.Logf("kernel: %v", err)
			cerr := classifyDial(err, src)
			if errorClass(cerr, ErrRead) != ErrPortsExhausted || !strings.Contains(cerr.Error(), ErrPortsExhaustedAdvice) {
				t.Errorf("kernel error %v classified as %s: %v", err, errorClass(cerr, ErrRead), cerr)
			}
			return true
		}
		t.Fatalf("three connections from a 2-port range: %v", conns)
		return true
	}
	for range windowTries {
		if dialThree() {
			return
		}
	}
	t.Fatalf("no 2-port window in %d had both ports free", windowTries)
}

// windowTries is how many random port windows a test tries before it gives up: a
// window may meet a port that another socket on the machine holds.
const windowTries = 8

// freshPorts picks the first of n local ports at random inside the default ephemeral
// range, so that a run soon after another does not meet its ports in TIME_WAIT.
func freshPorts(n int) int { return 33000 + rand.IntN(27000-n) }

// narrowDialer dials from src with the local ports narrowed to [lo, hi]
// (IP_LOCAL_PORT_RANGE), with or without IP_BIND_ADDRESS_NO_PORT.
func narrowDialer(src *net.TCPAddr, lo, hi int, noPort bool) net.Dialer {
	return net.Dialer{LocalAddr: src, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if noPort {
				serr = setBindNoPort(fd)
			}
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_LOCAL_PORT_RANGE, lo|hi<<16)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

// With IP_BIND_ADDRESS_NO_PORT a source address's ports serve every destination
// anew: ten local ports carry ten connections to each of two listeners. Bound the
// usual way (port chosen at bind), the same ten ports carry ten in all.
func TestBindNoPortGivesEveryDestinationTheWholeRange(t *testing.T) {
	var dsts []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dsts = append(dsts, ln.Addr().String())
	}
	count := func(src *net.TCPAddr, noPort bool) int {
		lo := freshPorts(10)
		d := narrowDialer(src, lo, lo+9, noPort)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for _, dst := range dsts {
			for range 12 {
				c, err := d.DialContext(ctxTimeout(t, 10*time.Second), "tcp", dst)
				if errors.Is(err, unix.ENOPROTOOPT) {
					t.Skipf("IP_LOCAL_PORT_RANGE unsupported here: %v", err)
				}
				if err == nil {
					conns = append(conns, c)
				}
			}
		}
		return len(conns)
	}
	// A window whose ports another socket holds carries fewer; never more. So each
	// count is retried in fresh windows until it is whole, and more than whole fails.
	whole := func(src *net.TCPAddr, noPort bool, want int) int {
		n := 0
		for range windowTries {
			if n = count(src, noPort); n >= want {
				break
			}
			t.Logf("bind-no-port %v: %d connections, want %d; another window", noPort, n, want)
		}
		return n
	}
	if n := whole(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 11)}, true, 20); n != 20 {
		t.Errorf("with IP_BIND_ADDRESS_NO_PORT: %d connections from 10 ports to 2 destinations, want 20", n)
	}
	if n := whole(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 12)}, false, 10); n != 10 {
		t.Errorf("without: %d connections from 10 ports to 2 destinations, want 10", n)
	}
}
