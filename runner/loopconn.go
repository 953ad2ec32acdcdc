package runner

import (
	"net"
	"sync"
	"time"
)

// loopConn is the transport under a TLS client connection (tls.Client is given it
// instead of the TCP connection), so that the body of an HTTP/1.1 response over TLS
// can go to an event loop like a cleartext one. Until the hand-off it forwards
// everything to the TCP connection. On the loop the TCP connection is gone (the loop
// reads a duplicate of its socket): the loop puts the ciphertext it read into in and
// calls the TLS connection's Read, which takes it from there, and a Read with nothing
// left fails with errWouldBlock, a temporary error, which crypto/tls does not keep
// (its record state stays as it was, and the next Read carries on). Writes (a TLS
// alert, a key update) go to the loop's descriptor. After a hand-back the new TCP
// connection (the socket back in the runtime's netpoller) takes over.
type loopConn struct {
	net.Conn // the TCP connection while not on a loop

	mu     sync.Mutex
	looped bool
	fd     int    // the loop's descriptor while looped; -1 once the loop closed it
	in     []byte // ciphertext read by the loop, during one of its reads only
	end    error  // the socket's end (io.EOF), once the loop read it
}

// errWouldBlock is what a looped loopConn's Read returns with nothing left to read.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "event loop: no bytes yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (c *loopConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if !c.looped {
		conn := c.Conn
		c.mu.Unlock()
		return conn.Read(p)
	}
	defer c.mu.Unlock()
	switch {
	case len(c.in) > 0:
		n := copy(p, c.in)
		c.in = c.in[n:]
		return n, nil
	case c.end != nil:
		return 0, c.end
	}
	return 0, errWouldBlock
}

func (c *loopConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.looped {
		conn := c.Conn
		c.mu.Unlock()
		return conn.Write(p)
	}
	defer c.mu.Unlock()
	if c.fd < 0 {
		return 0, net.ErrClosed
	}
	return writeAll(c.fd, p)
}

// Close closes the TCP connection; on a loop the loop owns the socket and closes it.
func (c *loopConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.looped {
		return nil
	}
	return c.Conn.Close()
}

func (c *loopConn) SetDeadline(t time.Time) error     { return c.deadline(t, net.Conn.SetDeadline) }
func (c *loopConn) SetReadDeadline(t time.Time) error { return c.deadline(t, net.Conn.SetReadDeadline) }
func (c *loopConn) SetWriteDeadline(t time.Time) error {
	return c.deadline(t, net.Conn.SetWriteDeadline)
}

// deadline sets a deadline on the TCP connection; on a loop reads never block and
// writes are a few bytes, so there is none.
func (c *loopConn) deadline(t time.Time, set func(net.Conn, time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.looped {
		return nil
	}
	return set(c.Conn, t)
}
