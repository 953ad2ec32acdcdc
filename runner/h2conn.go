package runner

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 client of the stream path. net/http's costs about 60 KB and three
// goroutines per connection (a read loop, a request goroutine, 4 KiB bufio reader and
// writer, a Transport each); a simulated browser holding one event stream needs far
// less: one goroutine reading frames into small per-stream buffers, writes straight
// to the TLS connection under a lock, no dynamic header tables. It speaks the part of
// RFC 9113 a client of long responses needs: SETTINGS (acknowledged, the peer's
// stream limit honoured, waiters served in order), flow control both ways, PING,
// RST_STREAM on close, GOAWAY (no new streams; streams above the last id fail as
// not processed and are retried on a new connection), CONTINUATION, trailers.
const (
	// h2StreamWindow is the receive window of each stream: what a stream may have
	// buffered unread. The protocol's default (64 KiB): a stream that stops reading
	// blocks its sender once that much is in flight.
	h2StreamWindow = 65535
	// h2ConnWindow is the connection's receive window. Data is credited back to the
	// connection as it arrives (each stream's window bounds what it buffers), so
	// it only needs to cover the streams' windows in flight.
	h2ConnWindow = 1 << 20
	// h2MaxFrame is the largest frame payload read: the protocol's minimum, so the
	// frame buffer of a connection stays at most 16 KiB.
	h2MaxFrame = 16384
	// h2WriteTimeout bounds one write to the connection: a peer that stops reading
	// fails the connection instead of blocking its streams forever.
	h2WriteTimeout = 30 * time.Second
	// h2MaxRetries bounds the attempts of a stream the server did not process
	// (REFUSED_STREAM, or above a GOAWAY's last stream id).
	h2MaxRetries = 3
)

// errH2Unprocessed marks a stream the server never processed: it may be sent again
// (RFC 9113 section 8.7).
var errH2Unprocessed = errors.New("http2: stream not processed by the server")

// h2Conn is one HTTP/2 connection of a browser's origin pool.
type h2Conn struct {
	tc *tls.Conn
	fr *http2.Framer // ReadFrame on the read loop only; writes under wmu

	wmu  sync.Mutex
	hbuf bytes.Buffer // hpack output, under wmu
	henc *hpack.Encoder

	mu         sync.Mutex
	err        error // the connection is dead: why
	goaway     bool  // no new streams
	lastID     uint32
	nextID     uint32
	streams    map[uint32]*h2Stream
	active     int // streams holding a slot
	maxStreams int // the peer's SETTINGS_MAX_CONCURRENT_STREAMS
	waiters    []*h2Waiter
	sendWindow int32 // connection send window
	initSend   int32 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	maxSend    int   // the peer's SETTINGS_MAX_FRAME_SIZE
	sendWake   chan struct{}
	connUnack  int // bytes received and not yet credited back to the connection
}

// newH2Conn starts HTTP/2 on a TLS connection that negotiated h2 and returns once the
// server's SETTINGS are applied: before them its stream limit is unknown, and a page
// opening more streams at once than a low limit allows would see them refused.
func newH2Conn(ctx context.Context, tc *tls.Conn, timeout time.Duration) (*h2Conn, error) {
	c := &h2Conn{tc: tc, nextID: 1, streams: make(map[uint32]*h2Stream, 1), maxStreams: 1<<31 - 1,
		sendWindow: 65535, initSend: 65535, maxSend: 16384,
	}
	c.fr = http2.NewFramer(h2Writer{c}, tc)
	c.fr.SetMaxReadFrameSize(h2MaxFrame)
	c.fr.MaxHeaderListSize = MaxResponseHead
	// The decoder accepts the protocol's default table until our SETTINGS are seen;
	// HEADER_TABLE_SIZE 0 asks the server not to keep one at all.
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.henc.SetMaxDynamicTableSizeLimit(0)

	c.wmu.Lock()
	_, err := io.WriteString(h2Writer{c}, http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: MaxResponseHead},
		)
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	}
	c.wmu.Unlock()
	if err != nil {
		tc.Close()
		return nil, err
	}
	// The server's preface (its SETTINGS) is read here, on the dialling goroutine:
	// the first records after the handshake (TLS 1.3 session tickets) are handled
	// where the stack is deep already, and the read loop starts with a small one.
	tc.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { tc.SetReadDeadline(time.Now()) })
	f, err := c.fr.ReadFrame()
	stop()
	tc.SetReadDeadline(time.Time{})
	if err == nil {
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			err = fmt.Errorf("http2: the server's first frame is %v, not SETTINGS", f.Header().Type)
		} else {
			err = c.handle(f)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("no SETTINGS from the server within %v", timeout)
		}
		c.fail(err)
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// h2Writer writes one frame at a time to the TLS connection with a deadline; the
// Framer calls it under wmu.
type h2Writer struct{ c *h2Conn }

func (w h2Writer) Write(p []byte) (int, error) {
	w.c.tc.SetWriteDeadline(time.Now().Add(h2WriteTimeout))
	return w.c.tc.Write(p)
}

// write runs f (a Framer write) under the write lock; an error fails the connection.
func (c *h2Conn) write(f func(fr *http2.Framer) error) error {
	c.wmu.Lock()
	err := f(c.fr)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("http2 write: %w", err))
	}
	return err
}

// Err is non-nil once the connection takes no new streams (dead, closed, GOAWAY).
func (c *h2Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.goaway {
		return errors.New("http2: server sent GOAWAY")
	}
	return nil
}

// Close closes the connection; its streams end with an error.
func (c *h2Conn) Close() error {
	c.fail(errors.New("http2: connection closed"))
	return nil
}

// fail ends the connection with err (the first error wins) and every stream on it.
func (c *h2Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := c.streams
	c.streams = nil
	waiters := c.waiters
	c.waiters = nil
	if c.sendWake != nil {
		close(c.sendWake)
		c.sendWake = nil
	}
	c.mu.Unlock()
	c.tc.Close()
	for _, s := range streams {
		s.fail(err, false)
		s.kick()
	}
	for _, w := range waiters {
		close(w.ch)
	}
}

// readLoop reads every frame of the connection until it fails.
func (c *h2Conn) readLoop() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetStream(se.StreamID, se.Code, fmt.Errorf("http2: %v", se))
				continue
			}
			if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh != nil && mh.Truncated {
				// A head over the limit in several frames ends the connection (the
				// decoder stops following it); its stream learns why.
				c.mu.Lock()
				s := c.streams[mh.StreamID]
				c.mu.Unlock()
				if s != nil {
					s.fail(fmt.Errorf("%w (HTTP/2)", errHeadTooLarge), false)
				}
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(fmt.Errorf("http2 read: %w", err))
			return
		}
		id := f.Header().StreamID
		if err := c.handle(f); err != nil {
			c.write(func(fr *http2.Framer) error { return fr.WriteGoAway(0, http2.ErrCodeProtocol, nil) })
			c.fail(err)
			return
		}
		if id != 0 {
			// A pushed stream's data is parsed here, not deeper in handle: the read
			// loop's stack stays small.
			c.mu.Lock()
			s := c.streams[id]
			c.mu.Unlock()
			if s != nil {
				s.kick()
			}
		}
	}
}

// handle handles one frame; an error is a connection error.
func (c *h2Conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := c.applySettings(f); err != nil {
			return err
		}
		if err := c.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() }); err != nil {
			return err
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			data := f.Data
			return c.write(func(fr *http2.Framer) error { return fr.WritePing(true, data) })
		}
	case *http2.GoAwayFrame:
		c.goAway(f.LastStreamID, f.ErrCode)
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(f.StreamID, f.Increment)
	case *http2.MetaHeadersFrame:
		c.headers(f)
	case *http2.DataFrame:
		return c.data(f)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		s := c.streams[f.StreamID]
		c.mu.Unlock()
		if s != nil {
			err := fmt.Errorf("http2: stream reset by the server (%v)", f.ErrCode)
			if f.ErrCode == http2.ErrCodeRefusedStream {
				err = fmt.Errorf("%w: %v", errH2Unprocessed, err)
			}
			s.fail(err, true)
			s.kick()
		}
	case *http2.PushPromiseFrame:
		return errors.New("http2: PUSH_PROMISE with push disabled")
	}
	return nil
}

func (c *h2Conn) applySettings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = int(min(s.Val, 1<<31-1))
			c.wakeWaitersLocked()
		case http2.SettingInitialWindowSize:
			delta := int32(s.Val) - c.initSend
			c.initSend = int32(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
			}
			c.wakeSendersLocked()
		case http2.SettingMaxFrameSize:
			c.maxSend = int(s.Val)
		}
		return nil
	})
}

// goAway stops new streams; streams the server will not process fail as such, and
// the connection closes when its last stream ends.
func (c *h2Conn) goAway(last uint32, code http2.ErrCode) {
	c.mu.Lock()
	c.goaway = true
	c.lastID = last
	var unprocessed []*h2Stream
	for id, s := range c.streams {
		if id > last {
			unprocessed = append(unprocessed, s)
		}
	}
	waiters := c.waiters
	c.waiters = nil
	idle := c.active == 0
	c.mu.Unlock()
	err := fmt.Errorf("%w (GOAWAY %v, last stream %d)", errH2Unprocessed, code, last)
	for _, s := range unprocessed {
		s.fail(err, false)
		s.kick()
	}
	for _, w := range waiters {
		close(w.ch)
	}
	if idle {
		c.fail(errors.New("http2: server sent GOAWAY"))
	}
}

func (c *h2Conn) windowUpdate(id, incr uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		if int64(c.sendWindow)+int64(incr) > 1<<31-1 {
			return errors.New("http2: connection send window overflow")
		}
		c.sendWindow += int32(incr)
	} else if s := c.streams[id]; s != nil {
		s.sendWindow += int32(incr)
	}
	c.wakeSendersLocked()
	return nil
}

// wakeSendersLocked wakes the request bodies waiting for window (sendWake is made only
// while one waits).
func (c *h2Conn) wakeSendersLocked() {
	if c.sendWake != nil {
		close(c.sendWake)
		c.sendWake = nil
	}
}

// h2Waiter is a stream waiting for a slot; granted says it was handed one (rather
// than woken by the end of the connection).
type h2Waiter struct {
	ch      chan struct{}
	granted bool
}

func (c *h2Conn) wakeWaitersLocked() {
	for len(c.waiters) > 0 && c.active < c.maxStreams {
		w := c.waiters[0]
		c.waiters = c.waiters[1:]
		w.granted = true
		c.active++ // handed to that waiter
		close(w.ch)
	}
	if len(c.waiters) == 0 {
		c.waiters = nil
	}
}

// headers takes a response head (or trailers) for its stream.
func (c *h2Conn) headers(f *http2.MetaHeadersFrame) {
	c.mu.Lock()
	s := c.streams[f.StreamID]
	c.mu.Unlock()
	if s == nil {
		return
	}
	if f.Truncated {
		c.resetStream(f.StreamID, http2.ErrCodeCancel, fmt.Errorf("%w (HTTP/2)", errHeadTooLarge))
		return
	}
	s.mu.Lock()
	if s.gotHead {
		// Trailers: only their END_STREAM matters here.
		s.mu.Unlock()
		if f.StreamEnded() {
			s.endBody()
		} else {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol, errors.New("http2: trailers without END_STREAM"))
		}
		return
	}
	status, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || status < 100 || status > 999 {
		s.mu.Unlock()
		c.resetStream(f.StreamID, http2.ErrCodeProtocol, fmt.Errorf("http2: malformed :status %q", f.PseudoValue("status")))
		return
	}
	if status < 200 {
		s.mu.Unlock()
		return // 1xx: the final head follows
	}
	h := make(http.Header, len(f.RegularFields()))
	for _, hf := range f.RegularFields() {
		k := http.CanonicalHeaderKey(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	s.head, s.gotHead = &h2Head{status: status, header: h}, true
	s.mu.Unlock()
	s.signal(s.headCh)
	if f.StreamEnded() {
		s.endBody()
	}
}

// data buffers a DATA frame's payload for its stream and credits the connection.
func (c *h2Conn) data(f *http2.DataFrame) error {
	n := int(f.Header().Length)
	c.mu.Lock()
	s := c.streams[f.StreamID]
	c.connUnack += n
	credit := 0
	if c.connUnack >= h2ConnWindow/2 {
		credit, c.connUnack = c.connUnack, 0
	}
	c.mu.Unlock()
	if credit > 0 {
		if err := c.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, uint32(credit)) }); err != nil {
			return err
		}
	}
	if s == nil {
		return nil
	}
	if err := s.push(f.Data(), n); err != nil {
		c.resetStream(f.StreamID, http2.ErrCodeFlowControl, err)
		return nil
	}
	if f.StreamEnded() {
		s.endBody()
	}
	return nil
}

// resetStream sends RST_STREAM and ends the stream with err.
func (c *h2Conn) resetStream(id uint32, code http2.ErrCode, err error) {
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	if s == nil {
		return
	}
	s.fail(err, false)
	s.closeWith(code)
	s.kick()
}

// h2Request is a request to send on a stream.
type h2Request struct {
	method    string
	authority string
	path      string
	header    http.Header // regular fields; connection-specific ones are dropped
	body      []byte
}

// h2Head is a response head.
type h2Head struct {
	status int
	header http.Header
}

// acquireSlot waits for a stream slot under the peer's limit, in order of arrival.
func (c *h2Conn) acquireSlot(ctx context.Context) error {
	c.mu.Lock()
	if c.err != nil || c.goaway {
		c.mu.Unlock()
		return errH2Unprocessed
	}
	if c.active < c.maxStreams && len(c.waiters) == 0 {
		c.active++
		c.mu.Unlock()
		return nil
	}
	w := &h2Waiter{ch: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	var err error
	select {
	case <-w.ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !w.granted {
		for i, o := range c.waiters {
			if o == w {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
		return cmp.Or(err, errH2Unprocessed) // woken by the end of the connection
	}
	if err == nil && (c.err != nil || c.goaway) {
		err = errH2Unprocessed
	}
	if err != nil {
		c.releaseSlotLocked()
	}
	return err
}

func (c *h2Conn) releaseSlotLocked() {
	c.active--
	c.wakeWaitersLocked()
}

// open sends a request on a new stream. It waits for a slot first; wrote is when the
// request's HEADERS were written. The stream holds its slot until close.
func (c *h2Conn) open(ctx context.Context, r *h2Request) (s *h2Stream, wrote time.Time, err error) {
	if err := c.acquireSlot(ctx); err != nil {
		return nil, time.Time{}, err
	}
	s = &h2Stream{c: c, headCh: make(chan struct{}, 1), wake: make(chan struct{}, 1), recvWindow: h2StreamWindow}
	c.wmu.Lock()
	c.mu.Lock()
	if c.err != nil || c.goaway {
		c.releaseSlotLocked()
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, time.Time{}, errH2Unprocessed
	}
	// Stream ids must rise in the order their HEADERS are written: both under wmu.
	s.id = c.nextID
	c.nextID += 2
	s.sendWindow = c.initSend
	maxFrame := c.maxSend
	c.streams[s.id] = s
	c.mu.Unlock()
	err = c.writeHeadersLocked(s.id, r, maxFrame)
	c.wmu.Unlock()
	wrote = time.Now()
	if err != nil {
		c.fail(fmt.Errorf("http2 write: %w", err))
		s.close()
		return nil, wrote, err
	}
	if len(r.body) > 0 {
		if err := s.sendBody(ctx, r.body); err != nil {
			s.close()
			return nil, wrote, err
		}
	}
	return s, wrote, nil
}

// writeHeadersLocked encodes r and writes it as HEADERS (and CONTINUATION) frames.
func (c *h2Conn) writeHeadersLocked(id uint32, r *h2Request, maxFrame int) error {
	c.hbuf.Reset()
	enc := func(k, v string) { c.henc.WriteField(hpack.HeaderField{Name: k, Value: v}) }
	enc(":method", r.method)
	enc(":scheme", "https")
	enc(":authority", r.authority)
	enc(":path", r.path)
	for k, vs := range r.header {
		lk := strings.ToLower(k)
		switch lk {
		case "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length", "te":
			continue
		}
		for _, v := range vs {
			enc(lk, strings.NewReplacer("\r", "", "\n", "").Replace(v))
		}
	}
	if len(r.body) > 0 || (r.method != http.MethodGet && r.method != http.MethodHead) {
		enc("content-length", strconv.Itoa(len(r.body)))
	}
	block := c.hbuf.Bytes()
	first := block[:min(len(block), maxFrame)]
	block = block[len(first):]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first,
		EndStream: len(r.body) == 0, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		frag := block[:min(len(block), maxFrame)]
		block = block[len(frag):]
		err = c.fr.WriteContinuation(id, len(block) == 0, frag)
	}
	// The block is written: its buffer is not kept for the connection's next request
	// (often none; with one stream per browser, 128 bytes per stream).
	c.hbuf = bytes.Buffer{}
	return err
}

// h2Stream is one request and its response on an h2Conn.
type h2Stream struct {
	c      *h2Conn
	id     uint32
	headCh chan struct{} // signalled when head or err is set
	wake   chan struct{} // signalled when data, EOF or err arrives

	// sendWindow is under c.mu.
	sendWindow int32

	mu         sync.Mutex
	head       *h2Head // until awaitHead takes it: a stream keeps no header map
	gotHead    bool
	buf        []byte // received, not yet read
	off        int
	recvWindow int // what the server may still send
	unacked    int // read and not yet credited back
	eof        bool
	err        error
	remoteDone bool // END_STREAM or RST_STREAM seen: no RST needed on close
	closed     bool
	pushed     *h2Push // the body is parsed where it arrives (h2push.go)
	draining   bool    // a goroutine is parsing the pushed stream's data
}

func (s *h2Stream) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push buffers received data; n is the frame's flow-controlled length.
func (s *h2Stream) push(p []byte, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.recvWindow {
		return errors.New("http2: server sent more than the stream's flow-control window")
	}
	s.recvWindow -= n
	// Padding counts against the window but is never read: credit it at once.
	s.unacked += n - len(p)
	if s.err != nil || s.eof {
		return nil
	}
	if s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	}
	s.buf = append(s.buf, p...)
	s.signal(s.wake)
	return nil
}

func (s *h2Stream) endBody() {
	s.mu.Lock()
	s.eof = true
	s.remoteDone = true
	s.mu.Unlock()
	s.signal(s.wake)
	s.signal(s.headCh)
}

// fail ends the stream with err unless it ended already; remote says the server
// reset it.
func (s *h2Stream) fail(err error, remote bool) {
	s.mu.Lock()
	if s.err == nil && !s.eof {
		s.err = err
	}
	if remote {
		s.remoteDone = true
	}
	s.mu.Unlock()
	s.signal(s.wake)
	s.signal(s.headCh)
}

// awaitHead waits for the response head.
func (s *h2Stream) awaitHead(ctx context.Context, timeout time.Duration) (*h2Head, error) {
	var expired <-chan time.Time // no timeout: ctx alone
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		s.mu.Lock()
		h, err, eof := s.head, s.err, s.eof
		s.head = nil
		s.mu.Unlock()
		if h != nil {
			return h, nil
		}
		if err != nil {
			return nil, err
		}
		if eof {
			return nil, errors.New("http2: stream ended before a response head")
		}
		select {
		case <-s.headCh:
		case <-expired:
			return nil, classify(ErrTimeout, fmt.Errorf("no response headers within %v", timeout))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// read reads body bytes, waiting for them until ctx ends, and credits what was read
// back to the server.
func (s *h2Stream) read(ctx context.Context, p []byte) (int, error) {
	for {
		s.mu.Lock()
		if s.off < len(s.buf) {
			n := copy(p, s.buf[s.off:])
			s.off += n
			if s.off == len(s.buf) {
				if cap(s.buf) > 4<<10 {
					s.buf = nil // a burst is over: do not keep its buffer
				} else {
					s.buf = s.buf[:0]
				}
				s.off = 0
			}
			credit := s.creditLocked(n)
			s.mu.Unlock()
			if credit > 0 {
				s.c.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(s.id, uint32(credit)) })
			}
			return n, nil
		}
		err, eof := s.err, s.eof
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if eof {
			return 0, io.EOF
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// creditLocked counts n bytes read and returns the window to give back now: a
// quarter of the window at a time, none once the stream ended.
func (s *h2Stream) creditLocked(n int) int {
	s.unacked += n
	if s.unacked < h2StreamWindow/4 || s.eof || s.err != nil {
		return 0
	}
	credit := s.unacked
	s.unacked = 0
	s.recvWindow += credit
	return credit
}

// sendBody writes the request body in DATA frames within the send windows.
func (s *h2Stream) sendBody(ctx context.Context, body []byte) error {
	c := s.c
	for len(body) > 0 {
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		n := min(int(min(c.sendWindow, s.sendWindow)), c.maxSend, len(body))
		var wake chan struct{}
		if n <= 0 {
			if c.sendWake == nil {
				c.sendWake = make(chan struct{})
			}
			wake = c.sendWake
		} else {
			c.sendWindow -= int32(n)
			s.sendWindow -= int32(n)
		}
		c.mu.Unlock()
		if n <= 0 {
			select {
			case <-wake:
				continue
			case <-s.wake:
				s.mu.Lock()
				err := s.err
				s.mu.Unlock()
				if err != nil {
					return err
				}
				s.signal(s.wake) // not for us: leave it to the reader
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		chunk := body[:n]
		body = body[n:]
		if err := c.write(func(fr *http2.Framer) error { return fr.WriteData(s.id, len(body) == 0, chunk) }); err != nil {
			return err
		}
	}
	return nil
}

// close ends the stream: RST_STREAM (CANCEL) unless the server ended it, and its slot
// goes to the next waiter. Safe to call more than once.
func (s *h2Stream) close() { s.closeWith(http2.ErrCodeCancel) }

func (s *h2Stream) closeWith(code http2.ErrCode) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	rst := !s.remoteDone
	if s.err == nil && !s.eof {
		s.err = errors.New("http2: stream closed")
	}
	s.buf = nil
	s.mu.Unlock()
	c := s.c
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	delete(c.streams, s.id)
	c.releaseSlotLocked()
	idle := c.goaway && c.active == 0
	c.mu.Unlock()
	if rst {
		c.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(s.id, code) })
	}
	if idle {
		c.fail(errors.New("http2: server sent GOAWAY"))
	}
}
