package reference

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// closeGrace bounds the final writes of a stream ended by the server (and a sender write
// it interrupts), also under fault no-heartbeat, so that shutdown stays quick.
const closeGrace = time.Second

var (
	errStreamClosed = errors.New("stream closed")
	// errStreamNotReady: the headers are not written yet. Only a sender writing into
	// another sender's stream (fault no-replace) can get it.
	errStreamNotReady = errors.New("stream headers not written yet")
)

// stream is one open text/event-stream response. Any goroutine may call write, end and
// the accessors; writes are serialised by mu and never block longer than the write
// deadline (when deadlines are on). Only the handler that owns the response calls close;
// after it, write returns errStreamClosed and never touches the response again.
type stream struct {
	ctx      context.Context // the request's context
	w        http.ResponseWriter
	rc       *http.ResponseController
	body     bodyWriter                        // how bytes reach the connection; guarded by mu
	head     headPolicy                        // when the head leaves; guarded by mu
	deadline func(rc *http.ResponseController) // arms the deadline of the next write
	m        *metrics

	mu       sync.Mutex
	ready    bool  // headers written (or held by the head policy)
	closed   bool  // released by the handler
	writeErr error // the first failed write's error

	endOnce  sync.Once
	endCh    chan struct{} // closed by the first end
	reason   string        // set by the first end, read after endCh is closed
	closedCh chan struct{} // closed once the handler released the response

	// deadlineMu orders interrupt's deadline before close releases the connection (a
	// keep-alive one goes on to its next request); it is not held across writes.
	deadlineMu sync.Mutex
	released   bool // guarded by deadlineMu
}

// newStream makes the stream of one request, with the Server's body and deadline
// policies and the head policy given.
func (s *Server) newStream(r *http.Request, w http.ResponseWriter, head headPolicy) *stream {
	rc := http.NewResponseController(w)
	return &stream{
		ctx:      r.Context(),
		w:        w,
		rc:       rc,
		body:     s.policy.newBody(r, w, rc),
		head:     head,
		deadline: s.policy.writeDeadline,
		m:        s.m,
		endCh:    make(chan struct{}),
		closedCh: make(chan struct{}),
	}
}

// openStream counts st open and sends its head (as its head policy says); a failure
// ends the stream.
func (s *Server) openStream(st *stream) {
	s.m.streamsOpen.Inc()
	if err := st.writeHeaders(); err != nil {
		st.end(st.writeErrorReason(err))
	}
}

// writeHeaders sets the stream's headers and hands the head to the head policy.
func (st *stream) writeHeaders() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ready = true
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	st.body.header(h)
	return st.head.open(st.sendHeadLocked)
}

// sendHeadLocked writes the status line and headers and flushes them. st.mu is held.
func (st *stream) sendHeadLocked() error {
	st.w.WriteHeader(http.StatusOK)
	st.deadline(st.rc)
	return st.rc.Flush()
}

// write writes one or more complete frames through the body (which flushes them as its
// policy says). events and replayed are what the frames count for in the metrics once
// written, or once held back by the head policy.
func (st *stream) write(frame []byte, events, replayed int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return errStreamClosed
	}
	if !st.ready {
		return errStreamNotReady
	}
	frame, held := st.head.pass(frame)
	if held {
		st.count(events, replayed)
		return nil
	}
	st.deadline(st.rc)
	if st.ended() { // after arming: an interrupt's shorter deadline cannot be overwritten
		return errStreamClosed
	}
	if err := st.body.write(frame); err != nil {
		if st.writeErr == nil {
			st.writeErr = err
		}
		return err
	}
	st.count(events, replayed)
	return nil
}

// count adds frames handed to the stream to the metrics.
func (st *stream) count(events, replayed int) {
	if events > 0 {
		st.m.eventsSent.Add(float64(events))
	}
	if replayed > 0 {
		st.m.eventsReplayed.Add(float64(replayed))
	}
}

// end asks for the stream to end with reason; the first call wins.
func (st *stream) end(reason string) {
	st.endOnce.Do(func() {
		st.reason = reason
		close(st.endCh)
	})
}

func (st *stream) ended() bool { return isClosed(st.endCh) }

// interrupt ends st with reason for a goroutine other than its holder and makes a write
// in progress give up within closeGrace: the sender of a stream writes on the holding
// handler's goroutine, which sees the end only once its write returns.
func (st *stream) interrupt(reason string) {
	st.end(reason)
	st.deadlineMu.Lock()
	defer st.deadlineMu.Unlock()
	if !st.released {
		_ = st.rc.SetWriteDeadline(time.Now().Add(closeGrace))
	}
}

// close releases the response; only the owning handler calls it, after endCh is closed.
// A stream ended by the server gets what its head policy still holds, finalComment (if
// any) and its buffered output, under a short deadline; one whose client is gone or
// broken is cut at once.
func (st *stream) close(finalComment []byte) {
	switch st.reason {
	case ReasonClientGone, ReasonWriteError, ReasonCut:
		// A deadline in the past makes a sender blocked in a write return now.
		_ = st.rc.SetWriteDeadline(time.Now().Add(-time.Second))
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
		st.deadlineMu.Lock()
		st.released = true
		st.deadlineMu.Unlock()
		return
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(closeGrace))
	st.mu.Lock()
	err := st.body.finish(append(st.head.held(), finalComment...))
	st.closed = true
	st.mu.Unlock()
	st.deadlineMu.Lock()
	defer st.deadlineMu.Unlock()
	st.released = true
	if err == nil {
		// A keep-alive connection goes on to its next request: drop our deadline.
		_ = st.rc.SetWriteDeadline(time.Time{})
	}
}

// goneReason says why the request context ended. net/http cancels it from inside a
// write that fails, before the write returns: so first wait for the write in progress
// (mu; a failing write returns at once, a blocked one by its deadline) and classify its
// error if it failed. Otherwise a kernel timeout on a peer that stopped reading is a
// write error, anything else the client going away.
func (st *stream) goneReason() string {
	st.mu.Lock()
	err := st.writeErr
	st.mu.Unlock()
	if err != nil && isTimeout(err) {
		return ReasonWriteError
	}
	if c := connFrom(st.ctx); c != nil && c.kernelTimedOut() {
		return ReasonWriteError
	}
	return ReasonClientGone
}

// writeErrorReason classifies a failed write.
func (st *stream) writeErrorReason(err error) string {
	switch {
	case isTimeout(err):
		return ReasonWriteError
	case st.ctx.Err() != nil:
		return st.goneReason()
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		return ReasonClientGone
	}
	return ReasonWriteError
}

// isTimeout reports a write deadline or a kernel timeout (TCP user timeout).
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT)
}

// cleanEnd reports whether reason is one where the server ends a healthy stream.
func cleanEnd(reason string) bool {
	switch reason {
	case ReasonClientGone, ReasonWriteError:
		return false
	}
	return true
}

// acceptsGzip reports whether Accept-Encoding values list gzip (or *) without q=0.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "*" {
				continue
			}
			name, q, _ := strings.Cut(params, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				if w, err := strconv.ParseFloat(strings.TrimSpace(q), 64); err == nil && w == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}
