package reference

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"time"
)

// noFlushBufferSize is the response buffer of fault no-flush: 2 KiB, as net/http buffers
// a handler's output before it starts a chunk (servlet containers default to 8 KiB). At
// the default tick of about 150 bytes a second, a stream is held some 14 s at a time, so
// a watch of 20 s (conform's default --idle) sees the fault: events arrive in batches and
// one of them cut at the buffer's edge.
const noFlushBufferSize = 2 << 10

// bodyWriter is how a stream's bytes reach the connection: the headers that say how,
// and when the bytes are flushed. A stream calls it under its mu only, so it need not
// be safe for concurrent use; its errors are the connection's.
type bodyWriter interface {
	// header sets the response headers this body needs, before the head is written.
	header(h http.Header)
	// write writes one or more complete frames and flushes as the body's policy says.
	write(frame []byte) error
	// finish writes final (which may be empty) and flushes everything still buffered.
	finish(final []byte) error
	// dst is the writer under the flush policy, where an encoder on top writes.
	dst() io.Writer
}

// newBodyFunc makes the body writer of one stream response.
type newBodyFunc func(r *http.Request, w http.ResponseWriter, rc *http.ResponseController) bodyWriter

var (
	_ bodyWriter = flushedBody{}
	_ bodyWriter = (*bufferedBody)(nil)
	_ bodyWriter = (*gzipBody)(nil)
)

// flushedBody is the correct body: every frame is flushed at once, and proxies are
// told not to buffer.
type flushedBody struct {
	w  io.Writer
	rc *http.ResponseController
}

func newFlushedBody(_ *http.Request, w http.ResponseWriter, rc *http.ResponseController) bodyWriter {
	return flushedBody{w: w, rc: rc}
}

func (b flushedBody) header(h http.Header) {
	// Tells nginx-style proxies not to buffer the response.
	h.Set("X-Accel-Buffering", "no")
}

func (b flushedBody) write(frame []byte) error {
	if _, err := b.w.Write(frame); err != nil {
		return err
	}
	return b.rc.Flush()
}

func (b flushedBody) finish(final []byte) error {
	if len(final) > 0 {
		if _, err := b.w.Write(final); err != nil {
			return err
		}
	}
	return b.rc.Flush()
}

func (b flushedBody) dst() io.Writer { return b.w }

// bufferedBody is fault no-flush: output waits in a 2 KiB buffer and leaves only when
// the buffer fills, and nothing tells a proxy not to buffer as well.
type bufferedBody struct {
	bw *bufio.Writer
	rc *http.ResponseController
}

func newBufferedBody(_ *http.Request, w http.ResponseWriter, rc *http.ResponseController) bodyWriter {
	return &bufferedBody{bw: bufio.NewWriterSize(w, noFlushBufferSize), rc: rc}
}

func (b *bufferedBody) header(http.Header) {}

func (b *bufferedBody) write(frame []byte) error {
	before := b.bw.Buffered()
	if _, err := b.bw.Write(frame); err != nil {
		return err
	}
	if b.bw.Buffered() != before+len(frame) { // the buffer filled and was written out
		return b.rc.Flush()
	}
	return nil
}

func (b *bufferedBody) finish(final []byte) error {
	if len(final) > 0 {
		if _, err := b.bw.Write(final); err != nil {
			return err
		}
	}
	if err := b.bw.Flush(); err != nil {
		return err
	}
	return b.rc.Flush()
}

func (b *bufferedBody) dst() io.Writer { return b.bw }

// gzipBody is fault gzip-buffer: the stream goes through a gzip compressor that is
// never flushed, into the body beneath it, so bytes leave only when the compressor's
// output fills the response buffer.
type gzipBody struct {
	gz    *gzip.Writer
	under bodyWriter
}

// gzipWhenAccepted is fault gzip-buffer over base: a response whose request accepts gzip
// is compressed. (The correct server never compresses an event stream.)
func gzipWhenAccepted(base newBodyFunc) newBodyFunc {
	return func(r *http.Request, w http.ResponseWriter, rc *http.ResponseController) bodyWriter {
		b := base(r, w, rc)
		if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
			return b
		}
		return &gzipBody{gz: gzip.NewWriter(b.dst()), under: b}
	}
}

func (b *gzipBody) header(h http.Header) {
	b.under.header(h)
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
}

func (b *gzipBody) write(frame []byte) error {
	_, err := b.gz.Write(frame)
	return err
}

func (b *gzipBody) finish(final []byte) error {
	if len(final) > 0 {
		if _, err := b.gz.Write(final); err != nil {
			return err
		}
	}
	if err := b.gz.Close(); err != nil {
		return err
	}
	return b.under.finish(nil)
}

func (b *gzipBody) dst() io.Writer { return b.gz }

// writeDeadline arms the deadline of a stream's next write, WriteTimeout from now.
func writeDeadline(d time.Duration) func(rc *http.ResponseController) {
	return func(rc *http.ResponseController) { _ = rc.SetWriteDeadline(time.Now().Add(d)) }
}

// noWriteDeadline is fault no-heartbeat: writes may block forever.
func noWriteDeadline(*http.ResponseController) {}

// headPolicy decides when a stream's status line and headers leave. A stream calls it
// under its mu only, with the headers set; one value serves one stream.
type headPolicy interface {
	// open is called once, when the stream is ready: it sends the head (send) now, or
	// leaves it to net/http's first write.
	open(send func() error) error
	// pass is given each frame before it is written and returns the bytes to write now;
	// held is true when it keeps the frame back instead (it counts as handed over).
	pass(frame []byte) (out []byte, held bool)
	// held returns what is still kept back, for the stream's final write.
	held() []byte
}

var (
	_ headPolicy = headNow{}
	_ headPolicy = (*lateHead)(nil)
)

// headNow is the correct head: sent and flushed as soon as the stream is open.
type headNow struct{}

func (headNow) open(send func() error) error     { return send() }
func (headNow) pass(frame []byte) ([]byte, bool) { return frame, false }
func (headNow) held() []byte                     { return nil }

// lateHead is fault late-head: the head is held, with the stream's first frame (its
// retry field and connected event), until the next write (the first event or ping), as
// frameworks that send the head only with the first write do.
type lateHead struct {
	first    []byte // the first frame, held back
	released bool   // the head and first frame went out
}

func (h *lateHead) open(func() error) error { return nil }

func (h *lateHead) pass(frame []byte) ([]byte, bool) {
	switch {
	case h.released:
		return frame, false
	case h.first == nil:
		h.first = append([]byte{}, frame...)
		return nil, true
	}
	out := append(h.first, frame...)
	h.first, h.released = nil, true
	return out, false
}

func (h *lateHead) held() []byte { return h.first }
