package runner

import (
	"errors"
	"io"

	"github.com/sseharness/sseharness/eventstream"
	"golang.org/x/net/http2"
)

// An HTTP/2 stream's body may be parsed where its frames arrive, on the connection's
// read loop, as the event loops do for cleartext HTTP/1.1: the source's goroutine
// hands the stream over after the head and ends, so a browser's streams cost one
// goroutine (the connection's) and no parser read buffer each. Taken when the source
// has event loops (SourceConfig.EventLoops: the same opt-out, GoroutineReaders), the
// body has no content coding and the source reads at full speed; a source paused or
// rate-limited later is handed back to a goroutine at its next data. Whoever has the
// stream's data drains it (the read loop, or the goroutine of an interrupt), one at a
// time; the records are the same as on the goroutine path.

// h2Push is a stream whose body is parsed off the source's goroutine.
type h2Push struct {
	es      *EventSource
	attempt int
	x       *exchange
	stop    func() bool // unregisters the interrupt hook; nil until registered
}

// h2Pushable reports whether the body of x may be parsed on its connection's reader.
func (es *EventSource) h2Pushable(x *exchange) bool {
	return es.cfg.EventLoops != nil && x.h2s != nil && x.encoding == "" && !es.paused.Load() && es.readRate.Load() <= 0
}

// h2HandOff gives the stream of x to its connection's reader; false means it stays
// with the caller.
func (es *EventSource) h2HandOff(attempt int, x *exchange) bool {
	s := x.h2s
	p := &h2Push{es: es, attempt: attempt, x: x}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.pushed = p
	s.mu.Unlock()
	// Close, Reset, Leave and the engine's stop cancel the attempt: the stream then
	// ends where its data is drained, on a goroutine of its own as context.AfterFunc
	// would run it. Registered on the attempt's context itself: context.AfterFunc
	// would keep a context of its own for the stream's life (about 200 bytes).
	actx := es.actx
	stop := actx.AfterFunc(func() {
		go func() {
			s.fail(actx.Err(), false)
			s.drain()
		}()
	})
	s.mu.Lock()
	p.stop = stop
	s.mu.Unlock()
	s.drain() // what arrived with or after the head
	return true
}

// kick drains a pushed stream's data, if it has a drainer's work.
func (s *h2Stream) kick() {
	s.mu.Lock()
	isPushed := s.pushed != nil
	s.mu.Unlock()
	if isPushed {
		s.drain()
	}
}

// drain parses the data buffered for a pushed stream until none is left, ending the
// attempt at the body's end; it returns at once when another goroutine drains.
func (s *h2Stream) drain() {
	for {
		s.mu.Lock()
		p := s.pushed
		if p == nil || s.draining {
			s.mu.Unlock()
			return
		}
		data := s.buf[s.off:]
		end := s.err
		if end == nil && s.eof {
			end = io.EOF
		}
		if len(data) == 0 && end == nil {
			s.mu.Unlock()
			return
		}
		es := p.es
		if len(data) > 0 && end == nil && (es.paused.Load() || es.readRate.Load() > 0) {
			s.pushed = nil
			stop := p.stop
			s.mu.Unlock()
			s.handBack(p, stop)
			return
		}
		s.draining = true
		s.buf, s.off = nil, 0
		s.mu.Unlock()

		if len(data) > 0 {
			if err := es.parsePushed(p.attempt, data); err != nil {
				end = err // a size limit: the parser's error is sticky
			}
		}

		s.mu.Lock()
		s.draining = false
		if s.buf == nil && cap(data) <= 1<<10 {
			s.buf = data[:0] // reused for the next frames; a burst's buffer is not kept
		}
		credit := s.creditLocked(len(data))
		if end != nil {
			s.pushed = nil
		}
		stop := p.stop
		s.mu.Unlock()
		if credit > 0 {
			s.c.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(s.id, uint32(credit)) })
		}
		if end != nil {
			if stop != nil {
				stop()
			}
			es.afterBody(p.attempt, p.x, end)
			return
		}
	}
}

// handBack gives a pushed stream that is paused or rate-limited back to a goroutine,
// which reads on through flowReader (it pauses and paces); the data stays buffered
// for it. Apart from drain so that drain's frame stays small.
//
//go:noinline
func (s *h2Stream) handBack(p *h2Push, stop func() bool) {
	if stop != nil {
		stop()
	}
	es := p.es
	p.x.body = &flowReader{es: es, ctx: es.actx, r: h2Body{s: s, ctx: es.actx}}
	go es.continueBody(p.attempt, p.x)
}

// parsePushed feeds data to the push parser and handles every item it completes; an
// error is the parser's (sticky) one.
func (es *EventSource) parsePushed(attempt int, data []byte) error {
	es.parser.Feed(data)
	for {
		var err error
		es.item, err = es.parser.Next()
		if errors.Is(err, eventstream.ErrPending) {
			return nil
		}
		if err != nil {
			return err
		}
		es.handle(attempt)
	}
}
