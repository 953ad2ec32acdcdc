package runner

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"github.com/sseharness/sseharness/eventstream"
)

// Event loops (issue 14, item 1). With one goroutine per stream, every event wakes a
// goroutine: at 10,000 streams the scheduler, futex wake-ups and the runtime's epoll
// cost more CPU than parsing. An event loop owns thousands of non-blocking sockets and
// reads whichever are ready, one epoll wait serving many of them, into one read
// buffer: no goroutine and no parser read buffer per stream.
//
// Only the body of an HTTP/1.1 response without Content-Encoding goes to a loop,
// cleartext or over TLS (the TLS connection runs over a loopConn, which the loop
// feeds with the ciphertext it reads: loopconn.go). The source's goroutine still
// connects and reads the head (roundTripH1), then hands the socket over and ends;
// when the body ends the loop emits the attempt's last records and starts a
// goroutine only when a reconnect is due. (HTTP/2 bodies are parsed on their
// connection's reader instead: h2push.go.) Compressed bodies and sources that read
// slowly (ReadRate, StopReading) keep the goroutine path; a source that is paused or rate-limited while on a loop is handed
// back to a goroutine at its next readable moment. A loop sends the records of one
// wake-up in one burst at its end: one wake-up of the receiver per burst rather than
// per record.
//
// A hand-rolled loop over golang.org/x/sys/unix (already a dependency) rather than
// gnet, cloudwego/netpoll or lesismal/nbio: those own the dialling and the connection
// type (gnet and netpoll are servers first, nbio has its own HTTP parser), while the
// runner must keep dialling, source addresses, the head and the spec-exact parser as
// they are and only take over a socket already connected. What is needed of epoll is
// small: add, delete, wait, plus an eventfd to wake the loop.

// errLoopClosed ends the streams still on a loop when the loops are closed.
var errLoopClosed = errors.New("event loop closed")

// loopable reports whether the body of x may go to an event loop: HTTP/1.1
// (cleartext, or TLS over a loopConn), no content coding, a source reading at full
// speed. Decided before the
// parser is made, since a looped body needs a push parser.
func (es *EventSource) loopable(x *exchange) bool {
	if es.cfg.EventLoops == nil || x.encoding != "" || x.lease == nil || x.lease.h2 != nil || x.lease.tcp == nil {
		return false
	}
	switch c := x.lease.conn.(type) {
	case *net.TCPConn:
		if c != x.lease.tcp {
			return false
		}
	case *tls.Conn:
		// Over TLS when the TLS connection runs over a loopConn (see loopConn).
		if lc, ok := c.NetConn().(*loopConn); !ok || lc.Conn != net.Conn(x.lease.tcp) {
			return false
		}
	default:
		return false
	}
	if _, ok := x.body.(*bodyReader); !ok {
		return false
	}
	return !es.paused.Load() && es.readRate.Load() <= 0
}

// attempts runs the attempts from attempt on, as run does; it returns without
// finishing the source when a body went to an event loop, which then carries on.
func (es *EventSource) attempts(attempt int) {
	for ; es.begin(attempt); attempt++ {
		x, reason := es.connect(es.actx, attempt)
		if x != nil {
			var away bool
			reason, away = es.consumeOrHandOff(attempt, x)
			if away {
				return
			}
			es.release(x)
		}
		if !es.again(reason) {
			break
		}
	}
	es.finish()
}

// consumeOrHandOff is consume, except that a loopable body goes to an event loop
// (away true) or, when the hand-off fails, is read here with the push parser.
func (es *EventSource) consumeOrHandOff(attempt int, x *exchange) (reason CloseReason, away bool) {
	es.pushParser = es.loopable(x) || es.h2Pushable(x)
	if !es.pushParser {
		return es.consume(es.actx, attempt, x), false
	}
	if reason := es.accept(es.actx, attempt, x); reason != "" {
		return reason, false
	}
	if x.h2s != nil {
		if es.h2HandOff(attempt, x) {
			return "", true
		}
	} else if es.cfg.EventLoops.handOff(es, attempt, x) {
		return "", true
	}
	return es.pushConsume(es.actx, attempt, x), false
}

// afterBody ends an attempt whose body a loop read: its last records, then the
// reconnect (on a new goroutine, which waits the delay) or the source's end.
func (es *EventSource) afterBody(attempt int, x *exchange, err error) {
	es.parser.EndBody(err)
	_, err = es.parser.Next()
	reason := es.bodyEnded(es.actx, attempt, err)
	es.release(x)
	if es.again(reason) {
		go es.attempts(attempt + 1)
		return
	}
	es.finish()
}

// pushConsume reads the body on the source's goroutine into the push parser: a
// hand-off that failed, or a body handed back by a loop because the source was
// paused or rate-limited (x.body then carries the flow control).
func (es *EventSource) pushConsume(ctx context.Context, attempt int, x *exchange) CloseReason {
	size := es.cfg.ReadBufferSize
	if size <= 0 {
		size = eventstream.DefaultReadBufferSize
	}
	buf := make([]byte, size)
	for {
		var err error
		es.item, err = es.parser.Next()
		if errors.Is(err, eventstream.ErrPending) {
			n, rerr := x.body.Read(buf)
			es.parser.Feed(buf[:n])
			if rerr != nil {
				es.parser.EndBody(rerr)
			}
			continue
		}
		if err != nil {
			return es.bodyEnded(ctx, attempt, err)
		}
		es.handle(attempt)
	}
}

// continueBody carries on, on a goroutine, with a body a loop handed back.
func (es *EventSource) continueBody(attempt int, x *exchange) {
	reason := es.pushConsume(es.actx, attempt, x)
	es.release(x)
	if es.again(reason) {
		es.attempts(attempt + 1)
		return
	}
	es.finish()
}

// newParser makes the source's parser for a new body, push or pull as es.pushParser
// says, reusing the one it has when it is of that kind.
func (es *EventSource) newParser(body *exchange) {
	cfg := eventstream.Config{
		MaxLineSize:    es.cfg.MaxLineSize,
		MaxEventSize:   es.cfg.MaxEventSize,
		ReadBufferSize: es.cfg.ReadBufferSize,
		LastEventID:    es.seenID,
	}
	switch {
	case es.pushParser && es.parser != nil && es.parserPush:
		es.parser.Reset(nil)
	case es.pushParser:
		es.parser, es.parserPush = eventstream.NewPush(cfg), true
	case es.parser != nil && !es.parserPush:
		es.parser.Reset(body.body)
	default:
		es.parser, es.parserPush = eventstream.New(body.body, cfg), false
	}
}
