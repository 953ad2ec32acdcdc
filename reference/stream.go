package reference

import (
	"bufio"
	"compress/gzip"
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

// noFlushBufferSize is the response buffer of fault no-flush, the size of a servlet
// container's default response buffer.
const noFlushBufferSize = 8 << 10

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
	ctx          context.Context // the request's context
	w            http.ResponseWriter
	rc           *http.ResponseController
	bw           *bufio.Writer // fault no-flush: the 8 KiB response buffer; nil otherwise
	gz           *gzip.Writer  // fault gzip-buffer: the compressor, never flushed; nil otherwise
	lateHead     bool          // fault late-head: the head waits for the write after the preamble
	writeTimeout time.Duration // per-write deadline; 0 = none (fault no-heartbeat)
	m            *metrics

	mu       sync.Mutex
	ready    bool  // headers written
	closed   bool  // released by the handler
	writeErr error // the first failed write's error

	headHeld bool   // fault late-head: the head is not sent yet; guarded by mu
	held     []byte // fault late-head: the preamble (first write), sent with the next one; guarded by mu

	endOnce  sync.Once
	endCh    chan struct{} // closed by the first end
	reason   string        // set by the first end, read after endCh is closed
	closedCh chan struct{} // closed once the handler released the response
}

func newStream(r *http.Request, w http.ResponseWriter, writeTimeout time.Duration, noFlush bool, m *metrics) *stream {
	st := &stream{
		ctx:          r.Context(),
		w:            w,
		rc:           http.NewResponseController(w),
		writeTimeout: writeTimeout,
		m:            m,
		endCh:        make(chan struct{}),
		closedCh:     make(chan struct{}),
	}
	if noFlush {
		st.bw = bufio.NewWriterSize(w, noFlushBufferSize)
	}
	return st
}

// writeHeaders sends the stream's status line and headers at once.
func (st *stream) writeHeaders(noFlush bool) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ready = true
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	if !noFlush {
		// Tells nginx-style proxies not to buffer the response.
		h.Set("X-Accel-Buffering", "no")
	}
	if st.gz != nil {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	if st.lateHead {
		st.headHeld = true // written by the first write that goes out
		return nil
	}
	st.w.WriteHeader(http.StatusOK)
	if st.writeTimeout > 0 {
		_ = st.rc.SetWriteDeadline(time.Now().Add(st.writeTimeout))
	}
	return st.rc.Flush()
}

// write writes one or more complete frames and flushes them (under fault no-flush: only
// once the 8 KiB buffer fills). events and replayed are what the frames count for in the
// metrics once written.
func (st *stream) write(frame []byte, events, replayed int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return errStreamClosed
	}
	if !st.ready {
		return errStreamNotReady
	}
	if st.headHeld {
		if st.held == nil { // the preamble: held back with the head
			st.held = append([]byte{}, frame...)
			st.count(events, replayed)
			return nil
		}
		frame = append(st.held, frame...)
		st.held, st.headHeld = nil, false
	}
	if st.writeTimeout > 0 {
		_ = st.rc.SetWriteDeadline(time.Now().Add(st.writeTimeout))
	}
	if err := st.writeLocked(frame); err != nil {
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

func (st *stream) writeLocked(frame []byte) error {
	if st.gz != nil {
		_, err := st.gz.Write(frame)
		return err
	}
	if st.bw == nil {
		if _, err := st.w.Write(frame); err != nil {
			return err
		}
		return st.rc.Flush()
	}
	before := st.bw.Buffered()
	if _, err := st.bw.Write(frame); err != nil {
		return err
	}
	if st.bw.Buffered() != before+len(frame) { // the buffer filled and was written out
		return st.rc.Flush()
	}
	return nil
}

// end asks for the stream to end with reason; the first call wins.
func (st *stream) end(reason string) {
	st.endOnce.Do(func() {
		st.reason = reason
		close(st.endCh)
	})
}

// close releases the response; only the owning handler calls it, after endCh is closed.
// A stream ended by the server gets finalComment (if any) and its buffered output, under
// a short deadline; one whose client is gone or broken is cut at once.
func (st *stream) close(finalComment []byte) {
	switch st.reason {
	case ReasonClientGone, ReasonWriteError, ReasonCut:
		// A deadline in the past makes a sender blocked in a write return now.
		_ = st.rc.SetWriteDeadline(time.Now().Add(-time.Second))
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
		return
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(closeGrace))
	st.mu.Lock()
	ok := true
	if st.headHeld && st.held != nil {
		finalComment = append(st.held, finalComment...)
	}
	if finalComment != nil {
		if st.gz != nil {
			_, err := st.gz.Write(finalComment)
			ok = err == nil
		} else if st.bw != nil {
			_, err := st.bw.Write(finalComment)
			ok = err == nil
		} else {
			_, err := st.w.Write(finalComment)
			ok = err == nil
		}
	}
	if ok && st.gz != nil {
		ok = st.gz.Close() == nil
	}
	if ok && st.bw != nil {
		ok = st.bw.Flush() == nil
	}
	if ok {
		ok = st.rc.Flush() == nil
	}
	st.closed = true
	st.mu.Unlock()
	if ok {
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

// gzipBuffered arms fault gzip-buffer when r accepts gzip: the stream's output goes
// through a compressor that is never flushed. Call it before writeHeaders.
func (st *stream) gzipBuffered(r *http.Request) {
	if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
		return
	}
	if st.bw != nil {
		st.gz = gzip.NewWriter(st.bw)
	} else {
		st.gz = gzip.NewWriter(st.w)
	}
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
