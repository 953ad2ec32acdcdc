package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// exchange is one request and its response head, with the connection it holds.
type exchange struct {
	lease       *lease
	status      int
	proto       string
	contentType string
	location    string
	encoding    string // Content-Encoding
	body        io.Reader
	cleanup     func()    // HTTP/2: ends the stream
	h2s         *h2Stream // HTTP/2: the stream
	undecode    func()    // releases the content decoder, nil without one
	ttHeaders   time.Duration
	slotWait    time.Duration // HTTP/2: waiting for a stream under the server's limit
}

// connect starts an attempt (Opened record), acquires a connection, sends the
// request, follows redirects and emits the Headers record of the final response. On failure it emits Error and Closed and
// returns the reason.
//
//go:noinline
func (es *EventSource) connect(ctx context.Context, attempt int) (*exchange, CloseReason) {
	es.opened(attempt)
	u := es.url
	req := streamRequest{method: es.cfg.Method, body: es.cfg.Body}
	var waited time.Duration
	dial, tlsHS := time.Duration(-1), time.Duration(-1)
	for hop := 0; ; hop++ {
		p, err := es.b.pool(u)
		if err != nil {
			return nil, es.refuse(ctx, attempt, CloseBadStatus, ErrProtocol, err)
		}
		l, err := p.acquire(ctx, es.cfg.RecvBuffer)
		if err != nil {
			return nil, es.refuse(ctx, attempt, CloseNetworkError, ErrDial, err)
		}
		waited += l.wait
		if l.dial >= 0 {
			dial, tlsHS = l.dial, l.tlsHS
		}
		if !es.attach(l) {
			l.release()
			return nil, es.refuse(ctx, attempt, CloseNetworkError, ErrRead, errors.New("interrupted"))
		}
		var x *exchange
		if l.h2 != nil {
			x, err = es.roundTripH2(ctx, l, u, req)
		} else {
			x, err = es.roundTripH1(ctx, l, u, req)
		}
		x.lease = l
		waited += x.slotWait
		if err != nil {
			es.release(x)
			if errors.Is(err, errHeadTooLarge) {
				// Not retried: the same head would come back.
				return nil, es.refuse(ctx, attempt, CloseTooLarge, ErrHeadTooLarge, err)
			}
			return nil, es.refuse(ctx, attempt, CloseNetworkError, ErrRead, err)
		}
		if isRedirect(x.status) && x.location != "" && hop < maxRedirects {
			es.release(x)
			next, err := u.Parse(x.location)
			if err != nil {
				return nil, es.refuse(ctx, attempt, CloseBadStatus, ErrStatus, fmt.Errorf("redirect to %q: %w", x.location, err))
			}
			u = next
			req = req.redirected(x.status)
			continue
		}
		accepted := x.status == http.StatusOK && isEventStream(x.contentType)
		es.emit(&Record{Kind: RecordHeaders, Attempt: attempt, Time: time.Now(), Status: x.status, Proto: x.proto,
			ContentType: x.contentType, ContentEncoding: x.encoding, Waited: waited, Dial: dial, TLS: tlsHS, TTHeaders: x.ttHeaders,
			Accepted: accepted, FirstAccepted: accepted && es.Opens() == 0})
		return x, ""
	}
}

// refuse ends an attempt that got no response head (or none to follow): like fail,
// with the Error record marked BeforeHead, so that the aggregate counts the attempt as
// not opened by its class.
func (es *EventSource) refuse(ctx context.Context, attempt int, reason CloseReason, class ErrorClass, err error) CloseReason {
	if r := es.interrupted(ctx); r != "" {
		es.closed(attempt, r)
		return r
	}
	es.emit(&Record{Kind: RecordError, Attempt: attempt, Time: time.Now(), Class: errorClass(err, class), Err: err.Error(), BeforeHead: true})
	es.closed(attempt, reason)
	return reason
}

// release ends the exchange and gives its connection back.
//
//go:noinline
func (es *EventSource) release(x *exchange) {
	if x.cleanup != nil {
		x.cleanup()
	}
	if x.undecode != nil {
		x.undecode()
	}
	es.mu.Lock()
	es.conn, es.tcp = nil, nil
	es.mu.Unlock()
	x.lease.release()
}

func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// attach makes the lease's connection reachable by Close/Reset/Leave; it returns
// false when the source was interrupted already.
func (es *EventSource) attach(l *lease) bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.final != "" || es.leaving {
		return false
	}
	es.conn, es.tcp = l.conn, l.tcp
	return true
}

// MaxResponseHead is the most bytes a response head may take (status line and header
// fields), as browsers and Go's MaxHeaderBytes limit it: a longer head ends the attempt
// with ErrHeadTooLarge, so whatever a target sends, a head costs at most this much.
const MaxResponseHead = 64 << 10

var errHeadTooLarge = fmt.Errorf("response head larger than %d KiB", MaxResponseHead>>10)

// headLimit passes at most left bytes through, then fails with errHeadTooLarge. It sits
// under the head's bufio reader only; the body is read around it.
type headLimit struct {
	r    io.Reader
	read int
	left int
}

func (h *headLimit) Read(p []byte) (int, error) {
	if h.left <= 0 {
		return 0, errHeadTooLarge
	}
	if len(p) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= n
	h.read += n
	return n, err
}

// headReadBuffer is the bufio size http.ReadResponse reads the head through. It lives
// only while the head is read; body bytes read along with it are handed over.
const headReadBuffer = 1 << 10

// roundTripH1 writes the request on the leased HTTP/1.1 connection and reads the
// response head.
func (es *EventSource) roundTripH1(ctx context.Context, l *lease, u *url.URL, req streamRequest) (*exchange, error) {
	x := &exchange{ttHeaders: -1}
	if err := l.conn.SetWriteDeadline(time.Now().Add(es.cfg.HeaderTimeout)); err != nil {
		return x, classify(ErrRead, err)
	}
	if _, err := l.conn.Write(es.requestBytes(u, req)); err != nil {
		return x, classify(ErrRead, err)
	}
	wrote := time.Now()
	l.conn.SetWriteDeadline(time.Time{})
	l.conn.SetReadDeadline(wrote.Add(es.cfg.HeaderTimeout))
	src := &flowReader{es: es, ctx: ctx, r: l.conn}
	// The bufio reader may read up to its size past the head: those bytes count
	// against the limit only when the head itself is too long (checked below).
	lim := &headLimit{r: src, left: MaxResponseHead + headReadBuffer}
	br := bufio.NewReaderSize(lim, headReadBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err == nil && lim.read-br.Buffered() > MaxResponseHead {
		err = errHeadTooLarge
	}
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			return x, err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return x, classify(ErrRead, fmt.Errorf("connection closed before response headers: %w", err))
		}
		var ne net.Error
		if errors.As(err, &ne) {
			return x, classify(ErrRead, err)
		}
		return x, classify(ErrProtocol, fmt.Errorf("malformed response: %w", err))
	}
	x.ttHeaders = time.Since(wrote)
	l.conn.SetReadDeadline(time.Time{})
	var pending []byte
	if n := br.Buffered(); n > 0 {
		pending = make([]byte, n)
		br.Read(pending)
	}
	chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
	x.status, x.proto = resp.StatusCode, resp.Proto
	x.contentType, x.location = resp.Header.Get("Content-Type"), resp.Header.Get("Location")
	x.encoding = resp.Header.Get("Content-Encoding")
	x.body = newBodyReader(l.conn, src, pending, chunked, resp.ContentLength)
	return x, nil
}

// streamRequest is the method and body of one hop of an attempt's request.
type streamRequest struct {
	method string
	body   string
}

// redirected is the request that follows a redirect with status, as fetch does it: 303
// (and 301 or 302 after a POST) becomes a GET without a body; 307 and 308 keep both.
func (r streamRequest) redirected(status int) streamRequest {
	if status == http.StatusSeeOther || ((status == http.StatusMovedPermanently || status == http.StatusFound) && r.method == http.MethodPost) {
		return streamRequest{method: http.MethodGet}
	}
	return r
}

// requestBytes writes the request by hand: the scale path never builds an
// http.Request. The headers are those of Chromium's EventSource; a body (a stream asked
// for with POST, SourceConfig.Body) goes with its Content-Length, on every attempt.
func (es *EventSource) requestBytes(u *url.URL, req streamRequest) []byte {
	b := make([]byte, 0, 256+len(req.body))
	b = append(b, req.method...)
	b = append(b, ' ')
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: "...)
	b = append(b, es.b.cfg.UserAgent...)
	b = append(b, "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nAccept-Encoding: "...)
	b = append(b, es.cfg.AcceptEncoding...)
	b = append(b, "\r\n"...)
	if id := es.LastEventID(); id != "" {
		b = append(b, "Last-Event-ID: "...)
		b = append(b, id...)
		b = append(b, "\r\n"...)
	}
	for k, vs := range es.cfg.Header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, strings.NewReplacer("\r", "", "\n", "").Replace(v)...)
			b = append(b, "\r\n"...)
		}
	}
	if req.body != "" || (req.method != http.MethodGet && req.method != http.MethodHead) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, req.body...)
}

// isEventStream reports whether a Content-Type's MIME essence is text/event-stream
// (case-insensitive, parameters ignored); an unparsable type is not.
func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// mime rejects some parameter lists browsers accept ("text/event-stream;"):
		// the essence is what counts.
		essence, _, _ := strings.Cut(contentType, ";")
		essence = strings.TrimSpace(essence)
		if !strings.ContainsRune(essence, '/') || strings.ContainsAny(essence, " \t") {
			return false
		}
		mt = strings.ToLower(essence)
	}
	return mt == "text/event-stream"
}

// accept applies the EventSource rules to the final response: 204 stops, another
// status or content type fails; a good response opens the stream and readies the
// parser. It returns "" when the stream is open.
//
//go:noinline
func (es *EventSource) accept(ctx context.Context, attempt int, x *exchange) CloseReason {
	switch {
	case x.status == http.StatusNoContent:
		es.closed(attempt, CloseNoContent)
		return CloseNoContent
	case x.status != http.StatusOK:
		return es.fail(ctx, attempt, CloseBadStatus, ErrStatus, fmt.Errorf("status %d", x.status))
	case !isEventStream(x.contentType):
		return es.fail(ctx, attempt, CloseBadContentType, ErrContentType, fmt.Errorf("content type %q is not text/event-stream", x.contentType))
	}
	if x.encoding != "" {
		body, undecode, err := newDecodedBody(x.encoding, x.body, int64(es.cfg.MaxDecodedRatio))
		if err != nil {
			return es.fail(ctx, attempt, CloseBadEncoding, ErrDecode, fmt.Errorf("content encoding %q: %w", x.encoding, err))
		}
		x.body, x.undecode = body, undecode
	}
	es.mu.Lock()
	es.open = true
	es.opens++
	es.changedLocked()
	es.mu.Unlock()
	es.senders.reset()
	es.first = true
	es.seenID = es.LastEventID()
	es.newParser(x)
	return ""
}

// bodyEnded turns the parser's final error into the attempt's end.
//
//go:noinline
func (es *EventSource) bodyEnded(ctx context.Context, attempt int, err error) CloseReason {
	es.publishLastID()
	switch {
	case errors.Is(err, io.EOF):
		if r := es.interrupted(ctx); r != "" {
			es.closed(attempt, r)
			return r
		}
		es.closed(attempt, CloseEOF)
		return CloseEOF
	case errors.Is(err, eventstream.ErrTooLarge), errors.Is(err, errDecodedTooLarge):
		// Not retried: the same oversized event (or bomb) would come back after a resume.
		return es.fail(ctx, attempt, CloseTooLarge, ErrTooLarge, err)
	case errors.Is(err, errDecode):
		return es.fail(ctx, attempt, CloseNetworkError, ErrDecode, err)
	default:
		return es.fail(ctx, attempt, CloseNetworkError, ErrRead, err)
	}
}

// publishLastID makes the parser's last event ID string visible to LastEventID: it
// changes at every dispatch, also one that fires no event, and a reconnect sends it.
func (es *EventSource) publishLastID() {
	if id := es.parser.LastEventID(); id != es.seenID {
		es.seenID = id
		es.mu.Lock()
		es.lastID = id
		es.mu.Unlock()
	}
}

// handle handles the item the parser just returned.
//
//go:noinline
func (es *EventSource) handle(attempt int) {
	it := &es.item
	now := es.readAt
	if now.IsZero() {
		now = time.Now()
	}
	es.publishLastID()
	switch it.Kind {
	case eventstream.KindEvent:
		es.event(attempt, now, it)
	case eventstream.KindComment, eventstream.KindRetry:
		es.commentOrRetry(attempt, now, it)
	}
	es.item = eventstream.Item{} // do not keep the event's data alive while idle
}

// commentOrRetry emits the record of a comment or a retry field. Out of line so that
// handle's frame stays small: the stream bodies of HTTP/2 connections are parsed on
// their reader goroutine, whose stack must stay within 4 KiB.
//
//go:noinline
func (es *EventSource) commentOrRetry(attempt int, now time.Time, it *eventstream.Item) {
	r := es.itemRecord()
	r.Kind, r.Attempt, r.Time, r.Bytes = RecordComment, attempt, now, it.Bytes
	if it.Kind == eventstream.KindRetry {
		es.retry = it.Retry
		r.Kind, r.Retry = RecordRetry, it.Retry
	}
	es.emit(r)
	es.releaseRecord(r)
}

// event measures one event and emits its record.
func (es *EventSource) event(attempt int, now time.Time, it *eventstream.Item) {
	r := es.itemRecord()
	r.Kind, r.Attempt, r.Time, r.EventType, r.EventID, r.Bytes = RecordEvent, attempt, now, it.Type, it.ID, it.Bytes
	r.TTFirst, r.Latency, r.Gap, r.Seq, r.Mark, r.MarkLatency = -1, -1, -1, -1, -1, -1
	connFirst := es.first
	if es.first {
		r.TTFirst = now.Sub(es.start)
		es.first = false
	}
	if !es.lastEventAt.IsZero() {
		r.Gap = now.Sub(es.lastEventAt)
	}
	es.lastEventAt = now
	f := scanData(it.Data, es.cfg.SentField, es.cfg.SentUnit, es.cfg.SenderField)
	if f.hasSent {
		// Clamped at 0: a negative value means "not timed", and clocks of two hosts
		// may disagree by a little.
		r.Latency = max(time.Duration(now.UnixNano()-f.sent), 0)
	}
	if es.cfg.MarkPrefix != "" {
		es.observeMark(r, it.Data, now)
	}
	if f.hasSender {
		r.Sender = f.sender
		r.DuplicateSender = es.senders.observe(f.sender)
	}
	// Only an event whose own block carried an id is counted: one without merely
	// carries the previous id over (the spec's id buffer) and is not that event again.
	if it.HasID && it.ID != "" {
		if s := parseSeq(it.ID); s >= 0 {
			r.Seq = s
			o := es.seq.observe(s, now.UnixNano(), connFirst)
			r.Missing, r.Duplicate, r.OutOfOrder = o.missing, o.dup, o.outOfOrder
			r.IDReset, r.IDJump, r.Jumped = o.reset, o.jump, o.jumped
		} else {
			r.Opaque = true
			r.Duplicate = es.seq.observeOpaque(it.ID)
		}
	}
	batched := es.emit(r)
	es.releaseRecord(r)
	if !batched {
		es.counted()
	}
}

// counted counts an event whose record is out (a loop's batch counts its events when
// it sends them), so that a waiter that wakes sees the record sent.
func (es *EventSource) counted() {
	es.mu.Lock()
	es.events++
	es.changedLocked()
	es.mu.Unlock()
}

// flowReader sits under the parser: it pauses while the source is told to stop
// reading and paces reads to the source's read rate. Either wait ends when the
// attempt does.
type flowReader struct {
	es  *EventSource
	ctx context.Context
	r   io.Reader

	gen   uint64 // SetReadRate generation the pacing below started at
	since time.Time
	n     int64
	timer *time.Timer
}

func (f *flowReader) Read(p []byte) (int, error) {
	if f.active() {
		return f.slowRead(p)
	}
	return f.r.Read(p)
}

// active reports whether reads must pause or be paced.
func (f *flowReader) active() bool { return f.es.paused.Load() || f.es.readRate.Load() > 0 }

// slowRead is the paused or rate-limited read, apart so that the common path stays
// a thin frame.
//
//go:noinline
func (f *flowReader) slowRead(p []byte) (int, error) {
	if f.es.paused.Load() {
		if err := f.es.waitResume(f.ctx); err != nil {
			return 0, err
		}
	}
	rate := f.es.readRate.Load()
	if rate <= 0 {
		return f.r.Read(p)
	}
	if gen := f.es.rateGen.Load(); gen != f.gen || f.since.IsZero() {
		f.gen, f.since, f.n = gen, time.Now(), 0
	}
	// Wait until the bytes read so far fit the rate, then read at most a tenth of a
	// second's worth, so that the pace is smooth.
	due := f.since.Add(time.Duration(float64(f.n) / float64(rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		if err := f.wait(d); err != nil {
			return 0, err
		}
	}
	if chunk := max(rate/10, 1); int64(len(p)) > chunk {
		p = p[:chunk]
	}
	n, err := f.r.Read(p)
	f.n += int64(n)
	return n, err
}

func (f *flowReader) wait(d time.Duration) error {
	if f.timer == nil {
		f.timer = time.NewTimer(d)
	} else {
		f.timer.Reset(d)
	}
	select {
	case <-f.timer.C:
		return nil
	case <-f.ctx.Done():
		f.timer.Stop()
		return f.ctx.Err()
	}
}

// waitResume blocks while the source is paused.
func (es *EventSource) waitResume(ctx context.Context) error {
	return es.await(ctx, &es.resume, func() (bool, error) { return !es.paused.Load(), nil })
}
