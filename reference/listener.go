package reference

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// userTimeoutListener sets TCP_USER_TIMEOUT on every accepted connection and wraps it in a
// trackedConn. With a peer that stops reading, the receive window drops to zero and a
// write may sit in the send buffer without ever blocking; the user timeout makes the
// kernel abort such a connection even when no write is pending, which a write deadline
// alone cannot do.
type userTimeoutListener struct {
	*net.TCPListener
	timeout time.Duration // 0 = leave the kernel default (fault no-heartbeat)
}

func (l *userTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if l.timeout > 0 {
		// A failure here only loses the kernel-side bound; write deadlines still apply.
		_ = setUserTimeout(c, l.timeout)
	}
	return &trackedConn{TCPConn: c}, nil
}

// trackedConn remembers the first error the HTTP server's reads got, so that a handler
// whose request context was cancelled can tell a kernel timeout (the peer stopped
// reading: a write error) from a peer that closed or reset the connection.
type trackedConn struct {
	*net.TCPConn
	readErr atomic.Pointer[error]
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if err != nil {
		c.readErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

// kernelTimedOut reports whether the kernel aborted the connection with ETIMEDOUT (TCP
// user timeout or retransmission limit). Deadlines set by net/http are not counted.
func (c *trackedConn) kernelTimedOut() bool {
	p := c.readErr.Load()
	return p != nil && errors.Is(*p, syscall.ETIMEDOUT)
}

type connKey struct{}

// connContext is http.Server.ConnContext: it makes the trackedConn reachable from a
// request's context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

func connFrom(ctx context.Context) *trackedConn {
	tc, _ := ctx.Value(connKey{}).(*trackedConn)
	return tc
}
