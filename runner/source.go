package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// SourceConfig describes one simulated EventSource. Zero values mean the defaults
// given per field.
type SourceConfig struct {
	// URL is the stream's URL (http or https). Required.
	URL string
	// Stream and Session label the records; Session is not sent anywhere by itself
	// (it is part of URL): setting the same Session and URL on two sources makes a
	// page reload with a fixed session id.
	Stream  int
	Session string
	// Header holds extra request headers.
	Header http.Header
	// LastEventID seeds the last event ID string, as if a previous connection had
	// seen it: the first request sends it, and id tracking starts from it.
	LastEventID string
	// Retry is the reconnection time until the server sends retry. Default 3 s.
	Retry time.Duration
	// Jitter lengthens each reconnection delay by a random share up to Jitter.
	Jitter float64
	// NoReconnect ends the source when its first connection ends.
	NoReconnect bool
	// ReadRate limits reading to this many bytes per second (0: unlimited).
	ReadRate int64
	// RecvBuffer sets SO_RCVBUF (bytes) on connections this source dials, so that a
	// source that stops reading soon blocks the server's writes. 0: the system's.
	RecvBuffer int
	// HeaderTimeout bounds the wait for response headers. Default 30 s.
	HeaderTimeout time.Duration
	// MaxEventSize, MaxLineSize and ReadBufferSize go to the parser (0: its defaults).
	MaxEventSize   int
	MaxLineSize    int
	ReadBufferSize int
	// LatencyField and SenderField name the JSON fields of the event data holding the
	// send time (unix ns) and the sender. Defaults "sent_unix_ns" and "sender".
	LatencyField string
	SenderField  string
	// Scheduled is when the first attempt was meant to start (Record.Scheduled);
	// zero means when Run starts.
	Scheduled time.Time
}

// maxRedirects is the fetch standard's redirect limit.
const maxRedirects = 20

// EventSource is one simulated browser EventSource. Run drives it; the control
// methods (Close, Reset, StopReading, ...) may be called from any goroutine at any
// time, before, during or after Run.
type EventSource struct {
	b   *Browser
	cfg SourceConfig
	url *url.URL
	out chan<- Record

	readRate atomic.Int64
	paused   atomic.Bool

	// Owned by the Run goroutine.
	parser      *eventstream.Parser
	seq         seqTracker
	senders     senderTracker
	retry       time.Duration
	lastEventAt time.Time

	mu          sync.Mutex
	final       CloseReason // a deliberate end (client close/reset, stopped, cancelled)
	rst         bool
	leaving     bool          // Leave was called: drop the connection, come back
	leaveDelay  time.Duration // how long to stay away
	noReconnect bool
	cancel      context.CancelFunc // cancels the current attempt (or reconnect wait)
	conn        net.Conn
	tcp         *net.TCPConn
	resume      chan struct{} // closed by ResumeReading
	notify      chan struct{} // closed at the next state change, for waiters
	open        bool
	opens       int64
	events      int64
	lastID      string
	ended       bool
	reason      CloseReason // reason of the latest Closed record
	done        chan struct{}
}

// NewEventSource returns a source of browser b that sends its records to out (nil:
// records are dropped, the counters behind WaitEvents still work). Sends on out
// block: the reader of out must keep reading until Run returns. The source does
// nothing until Run is called.
func (b *Browser) NewEventSource(cfg SourceConfig, out chan<- Record) (*EventSource, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("stream URL %q: %w", cfg.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("stream URL %q: want an absolute http:// or https:// URL", cfg.URL)
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.LatencyField == "" {
		cfg.LatencyField = DefaultLatencyField
	}
	if cfg.SenderField == "" {
		cfg.SenderField = DefaultSenderField
	}
	es := &EventSource{b: b, cfg: cfg, url: u, out: out, retry: cfg.Retry, done: make(chan struct{}),
		noReconnect: cfg.NoReconnect, lastID: cfg.LastEventID}
	es.readRate.Store(cfg.ReadRate)
	if s := parseSeq(cfg.LastEventID); s >= 0 {
		es.seq.seed(s)
	}
	return es, nil
}

// Close closes the stream the way EventSource.close() does: the connection ends with
// a clean FIN and the source never reconnects. The Closed record says client-close.
// Close does not wait; see Done.
func (es *EventSource) Close() { es.end(CloseClientClose, false) }

// Reset ends the stream abruptly: the socket is closed with SO_LINGER 0, so the
// server sees a TCP RST instead of a FIN, and the source never reconnects. Over
// HTTP/2 the stream is reset with RST_STREAM (the shared connection stays), as it is
// for Close. The Closed record says client-reset.
func (es *EventSource) Reset() { es.end(CloseClientReset, true) }

// stop ends the source for the engine: CloseStopped when the hold ends,
// CloseCancelled when the drain grace runs out. A cancel overrides a stop that has
// not finished yet.
func (es *EventSource) stop(reason CloseReason) { es.end(reason, false) }

func (es *EventSource) end(reason CloseReason, rst bool) {
	es.mu.Lock()
	if es.final == "" || (reason == CloseCancelled && es.final == CloseStopped) {
		es.final = reason
		es.rst = rst
	}
	es.interruptLocked(rst)
	es.mu.Unlock()
}

// interruptLocked drops the current connection and cancels the current attempt or
// reconnect wait.
func (es *EventSource) interruptLocked(rst bool) {
	if es.conn != nil {
		if rst && es.tcp != nil {
			es.tcp.SetLinger(0)
			es.tcp.Close()
		}
		es.conn.Close()
	}
	if es.cancel != nil {
		es.cancel()
	}
	es.changedLocked()
}

// Leave drops the current connection (FIN, or RST when reset is true) as a client
// that goes away does, and reconnects after delay with Last-Event-ID, whatever the
// server's retry. The Closed record says churn.
func (es *EventSource) Leave(delay time.Duration, reset bool) {
	es.mu.Lock()
	if es.final == "" {
		es.leaving = true
		es.leaveDelay = delay
		es.interruptLocked(reset)
	}
	es.mu.Unlock()
}

// StopReading stops reading the body while keeping the socket open: a half-open
// client. Data already read is still parsed; the server's writes block once the
// socket buffers fill (set SourceConfig.RecvBuffer to make that soon).
func (es *EventSource) StopReading() { es.paused.Store(true) }

// ResumeReading undoes StopReading.
func (es *EventSource) ResumeReading() {
	es.mu.Lock()
	es.paused.Store(false)
	if es.resume != nil {
		close(es.resume)
		es.resume = nil
	}
	es.mu.Unlock()
}

// SetReadRate limits reading to bytesPerSecond (0 or less: unlimited), from now on.
func (es *EventSource) SetReadRate(bytesPerSecond int64) { es.readRate.Store(bytesPerSecond) }

// SetReconnect enables or disables reconnecting after the current connection ends.
func (es *EventSource) SetReconnect(on bool) {
	es.mu.Lock()
	es.noReconnect = !on
	es.mu.Unlock()
}

// Done is closed when Run has returned.
func (es *EventSource) Done() <-chan struct{} { return es.done }

// Stream returns the stream index the source was configured with.
func (es *EventSource) Stream() int { return es.cfg.Stream }

// Events returns the number of events received so far, over all connections.
func (es *EventSource) Events() int64 {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.events
}

// Opens returns how many connections opened (200 with text/event-stream) so far.
func (es *EventSource) Opens() int64 {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.opens
}

// IsOpen reports whether a connection is open now.
func (es *EventSource) IsOpen() bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.open
}

// LastEventID returns the last event ID string: what a reconnect sends.
func (es *EventSource) LastEventID() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.lastID
}

// Reason returns the reason of the latest Closed record ("" before the first one);
// after Done it is why the source ended.
func (es *EventSource) Reason() CloseReason {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.reason
}

// ErrSourceEnded is returned by the Wait methods when the source ended before the
// condition held.
var ErrSourceEnded = errors.New("event source ended")

// WaitOpen blocks until a connection is open, the source ends (ErrSourceEnded) or
// ctx ends.
func (es *EventSource) WaitOpen(ctx context.Context) error {
	return es.waitFor(ctx, func() bool { return es.open })
}

// WaitOpens blocks until n connections have opened in total.
func (es *EventSource) WaitOpens(ctx context.Context, n int64) error {
	return es.waitFor(ctx, func() bool { return es.opens >= n })
}

// WaitEvents blocks until n events have arrived in total.
func (es *EventSource) WaitEvents(ctx context.Context, n int64) error {
	return es.waitFor(ctx, func() bool { return es.events >= n })
}

func (es *EventSource) waitFor(ctx context.Context, cond func() bool) error {
	for {
		es.mu.Lock()
		if cond() {
			es.mu.Unlock()
			return nil
		}
		if es.ended {
			es.mu.Unlock()
			return ErrSourceEnded
		}
		if es.notify == nil {
			es.notify = make(chan struct{})
		}
		ch := es.notify
		es.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (es *EventSource) changedLocked() {
	if es.notify != nil {
		close(es.notify)
		es.notify = nil
	}
}

func (es *EventSource) emit(r Record) {
	if es.out == nil {
		return
	}
	r.Stream = es.cfg.Stream
	r.Browser = es.b.cfg.ID
	r.Session = es.cfg.Session
	es.out <- r
}

// Run drives the source until it ends for good: a 204, a failed connection (bad
// status or content type, size limit), a deliberate end (Close, Reset, the engine's
// stop) or ctx's end (Closed reason cancelled). Between connections it waits the
// reconnection time. Run returns nil; call it once.
func (es *EventSource) Run(ctx context.Context) error {
	defer func() {
		es.mu.Lock()
		es.ended = true
		es.open = false
		es.changedLocked()
		es.mu.Unlock()
		close(es.done)
	}()
	stopAfter := context.AfterFunc(ctx, func() { es.end(CloseCancelled, false) })
	defer stopAfter()

	scheduled := es.cfg.Scheduled
	if scheduled.IsZero() {
		scheduled = time.Now()
	}
	var closedAt time.Time
	var delay time.Duration
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithCancel(ctx)
		es.mu.Lock()
		es.cancel = cancel
		final := es.final
		es.mu.Unlock()
		if attempt > 0 {
			if final == "" {
				final = es.sleep(actx, delay)
			}
			if final != "" {
				cancel()
				// Ended while waiting to reconnect: this Closed record has no Opened
				// before it, so that the last Closed of a stream always says why it ended.
				es.closed(attempt, final)
				return nil
			}
			es.emit(Record{Kind: RecordReconnect, Attempt: attempt, Time: time.Now(), Delay: time.Since(closedAt),
				Retry: es.retry, LastEventID: es.LastEventID()})
		} else if final != "" {
			cancel()
			es.closed(attempt, final)
			return nil
		}
		reason := es.attempt(actx, attempt, scheduled)
		cancel()
		closedAt = time.Now()
		es.mu.Lock()
		leaving, leaveDelay := es.leaving, es.leaveDelay
		es.leaving = false
		noReconnect := es.noReconnect
		es.mu.Unlock()
		switch {
		case reason == CloseEOF || reason == CloseNetworkError:
			if noReconnect {
				return nil
			}
			delay = es.retry
			if es.cfg.Jitter > 0 {
				delay += time.Duration(rand.Float64() * es.cfg.Jitter * float64(delay))
			}
		case reason == CloseChurn && leaving:
			delay = leaveDelay
		default:
			return nil
		}
		scheduled = closedAt.Add(delay)
	}
}

// sleep waits d unless the source is ended or told to leave meanwhile; it returns the
// final reason when ended. A Leave during the wait restarts it with the leave delay.
func (es *EventSource) sleep(ctx context.Context, d time.Duration) CloseReason {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return ""
		case <-ctx.Done():
			es.mu.Lock()
			final, leaving, leaveDelay := es.final, es.leaving, es.leaveDelay
			es.leaving = false
			if final == "" && leaving {
				// Replace the cancelled wait context so the new wait can be interrupted.
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(context.WithoutCancel(ctx))
				es.cancel = cancel
			}
			es.mu.Unlock()
			if final != "" {
				return final
			}
			if !leaving {
				return CloseCancelled
			}
			t.Reset(leaveDelay)
		}
	}
}

// closed emits the Closed record of an attempt and remembers its reason.
func (es *EventSource) closed(attempt int, reason CloseReason) {
	es.mu.Lock()
	es.reason = reason
	es.open = false
	es.changedLocked()
	es.mu.Unlock()
	es.emit(Record{Kind: RecordClosed, Attempt: attempt, Time: time.Now(), Reason: reason})
}

// interrupted says why the current attempt was cut short by the harness, "" when it
// was not. ctx is the attempt's context: its end without a reason set means Run's
// context ended and the AfterFunc that records it has not run yet.
func (es *EventSource) interrupted(ctx context.Context) CloseReason {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.final != "" {
		return es.final
	}
	if es.leaving {
		return CloseChurn
	}
	if ctx.Err() != nil {
		return CloseCancelled
	}
	return ""
}

// fail ends an attempt with an error: an Error record, then Closed with the
// harness's reason when it caused the error, else with reason.
func (es *EventSource) fail(ctx context.Context, attempt int, reason CloseReason, class ErrorClass, err error) CloseReason {
	if r := es.interrupted(ctx); r != "" {
		es.closed(attempt, r)
		return r
	}
	es.emit(Record{Kind: RecordError, Attempt: attempt, Time: time.Now(), Class: errorClass(err, class), Err: err.Error()})
	es.closed(attempt, reason)
	return reason
}

// response is the part of an HTTP response the runner uses.
type response struct {
	status      int
	proto       string
	contentType string
	location    string
	body        io.Reader
	ttHeaders   time.Duration // request written -> headers
	slotWait    time.Duration // HTTP/2: waiting for a stream under the server's limit
}

// attempt makes one connection attempt (following redirects) and reads it to its
// end. It emits Opened ... Closed and returns the Closed reason.
func (es *EventSource) attempt(ctx context.Context, attempt int, scheduled time.Time) CloseReason {
	start := time.Now()
	es.emit(Record{Kind: RecordOpened, Attempt: attempt, Time: start, Scheduled: scheduled})

	u := es.url
	var waited time.Duration
	dial, tlsHS := time.Duration(-1), time.Duration(-1)
	for hop := 0; ; hop++ {
		p, err := es.b.pool(u)
		if err != nil {
			return es.fail(ctx, attempt, CloseBadStatus, ErrProtocol, err)
		}
		l, err := p.acquire(ctx, es.cfg.RecvBuffer)
		if err != nil {
			return es.fail(ctx, attempt, CloseNetworkError, ErrDial, err)
		}
		waited += l.wait
		if l.dial >= 0 {
			dial, tlsHS = l.dial, l.tlsHS
		}
		if !es.attach(l) {
			l.release()
			return es.fail(ctx, attempt, CloseNetworkError, ErrRead, errors.New("interrupted"))
		}
		var resp response
		var cleanup func()
		if l.h2 != nil {
			resp, cleanup, err = es.roundTripH2(ctx, l.h2, u)
			waited += resp.slotWait
		} else {
			resp, err = es.roundTripH1(ctx, l, u)
			cleanup = func() {}
		}
		if err != nil {
			cleanup()
			es.detach(l)
			return es.fail(ctx, attempt, CloseNetworkError, ErrRead, err)
		}
		if isRedirect(resp.status) && resp.location != "" && hop < maxRedirects {
			next, perr := u.Parse(resp.location)
			cleanup()
			es.detach(l)
			if perr != nil {
				return es.fail(ctx, attempt, CloseBadStatus, ErrStatus, fmt.Errorf("redirect to %q: %w", resp.location, perr))
			}
			u = next
			continue
		}
		es.emit(Record{Kind: RecordHeaders, Attempt: attempt, Time: time.Now(), Status: resp.status, Proto: resp.proto,
			ContentType: resp.contentType, Waited: waited, Dial: dial, TLS: tlsHS, TTHeaders: resp.ttHeaders})
		reason := es.consume(ctx, attempt, start, resp)
		cleanup()
		es.detach(l)
		return reason
	}
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

func (es *EventSource) detach(l *lease) {
	es.mu.Lock()
	es.conn, es.tcp = nil, nil
	es.mu.Unlock()
	l.release()
}

// h1ReadBuffer is the bufio size under http.ReadResponse: headers are read through
// it and body reads of the parser's size bypass it, so it can stay small.
const h1ReadBuffer = 1 << 10

// roundTripH1 writes the request on the leased HTTP/1.1 connection and reads the
// response headers.
func (es *EventSource) roundTripH1(ctx context.Context, l *lease, u *url.URL) (response, error) {
	req := es.requestBytes(u)
	if err := l.conn.SetWriteDeadline(time.Now().Add(es.cfg.HeaderTimeout)); err != nil {
		return response{}, err
	}
	if _, err := l.conn.Write(req); err != nil {
		return response{}, classify(ErrRead, err)
	}
	wrote := time.Now()
	l.conn.SetWriteDeadline(time.Time{})
	l.conn.SetReadDeadline(wrote.Add(es.cfg.HeaderTimeout))
	br := bufio.NewReaderSize(&flowReader{es: es, ctx: ctx, r: l.conn}, h1ReadBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return response{}, classify(ErrRead, fmt.Errorf("connection closed before response headers: %w", err))
		}
		var ne net.Error
		if errors.As(err, &ne) {
			return response{}, classify(ErrRead, err)
		}
		return response{}, classify(ErrProtocol, fmt.Errorf("malformed response: %w", err))
	}
	l.conn.SetReadDeadline(time.Time{})
	return response{status: resp.StatusCode, proto: resp.Proto, contentType: resp.Header.Get("Content-Type"),
		location: resp.Header.Get("Location"), body: resp.Body, ttHeaders: time.Since(wrote)}, nil
}

// requestBytes writes the GET request by hand: the scale path never builds an
// http.Request.
func (es *EventSource) requestBytes(u *url.URL) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "GET "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: "...)
	b = append(b, es.b.cfg.UserAgent...)
	b = append(b, "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"...)
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
	return append(b, "\r\n"...)
}

// roundTripH2 sends the request on the shared HTTP/2 connection.
func (es *EventSource) roundTripH2(ctx context.Context, cc *http.ClientConn, u *url.URL) (response, func(), error) {
	var mu sync.Mutex
	var wrote time.Time
	trace := &httptrace.ClientTrace{WroteHeaders: func() { mu.Lock(); wrote = time.Now(); mu.Unlock() }}
	rctx, cancel := context.WithCancel(httptrace.WithClientTrace(ctx, trace))
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return response{}, func() {}, err
	}
	for k, vs := range es.cfg.Header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", es.b.cfg.UserAgent)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if id := es.LastEventID(); id != "" {
		req.Header.Set("Last-Event-ID", id)
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(es.cfg.HeaderTimeout, func() { timedOut.Store(true); cancel() })
	rtStart := time.Now()
	resp, err := cc.RoundTrip(req)
	timer.Stop()
	now := time.Now()
	mu.Lock()
	w := wrote
	mu.Unlock()
	// The headers are written once the connection has a stream slot: the time before
	// is the wait under the server's SETTINGS_MAX_CONCURRENT_STREAMS.
	r := response{slotWait: 0, ttHeaders: -1}
	if !w.IsZero() {
		r.slotWait = w.Sub(rtStart)
		r.ttHeaders = now.Sub(w)
	}
	if err != nil {
		cancel()
		if timedOut.Load() {
			return r, func() {}, classify(ErrTimeout, fmt.Errorf("no response headers within %v", es.cfg.HeaderTimeout))
		}
		return r, func() {}, classify(ErrRead, err)
	}
	r.status, r.proto = resp.StatusCode, resp.Proto
	r.contentType, r.location = resp.Header.Get("Content-Type"), resp.Header.Get("Location")
	r.body = &flowReader{es: es, ctx: ctx, r: resp.Body}
	return r, func() { cancel(); resp.Body.Close() }, nil
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

// consume checks the final response and, when it opens the stream, reads it to its
// end, emitting Event, Comment and Retry records.
func (es *EventSource) consume(ctx context.Context, attempt int, start time.Time, resp response) CloseReason {
	switch {
	case resp.status == http.StatusNoContent:
		es.closed(attempt, CloseNoContent)
		return CloseNoContent
	case resp.status != http.StatusOK:
		return es.fail(ctx, attempt, CloseBadStatus, ErrStatus, fmt.Errorf("status %d", resp.status))
	case !isEventStream(resp.contentType):
		return es.fail(ctx, attempt, CloseBadContentType, ErrContentType, fmt.Errorf("content type %q is not text/event-stream", resp.contentType))
	}
	es.mu.Lock()
	es.open = true
	es.opens++
	es.changedLocked()
	es.mu.Unlock()
	es.senders.reset()

	if es.parser == nil {
		es.parser = eventstream.New(resp.body, eventstream.Config{
			MaxLineSize:    es.cfg.MaxLineSize,
			MaxEventSize:   es.cfg.MaxEventSize,
			ReadBufferSize: es.cfg.ReadBufferSize,
			LastEventID:    es.LastEventID(),
		})
	} else {
		es.parser.Reset(resp.body)
	}
	first := true
	seenID := es.LastEventID()
	for {
		it, err := es.parser.Next()
		now := time.Now()
		// The last event ID string changes at every dispatch, also one that fires no
		// event; a reconnect sends it.
		if id := es.parser.LastEventID(); id != seenID {
			seenID = id
			es.mu.Lock()
			es.lastID = id
			es.mu.Unlock()
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				if r := es.interrupted(ctx); r != "" {
					es.closed(attempt, r)
					return r
				}
				es.closed(attempt, CloseEOF)
				return CloseEOF
			case errors.Is(err, eventstream.ErrTooLarge):
				// Not retried: the same oversized event would come back after a resume.
				return es.fail(ctx, attempt, CloseTooLarge, ErrTooLarge, err)
			default:
				return es.fail(ctx, attempt, CloseNetworkError, ErrRead, err)
			}
		}
		switch it.Kind {
		case eventstream.KindEvent:
			es.event(attempt, start, now, first, it)
			first = false
		case eventstream.KindComment:
			es.emit(Record{Kind: RecordComment, Attempt: attempt, Time: now, Bytes: it.Bytes})
		case eventstream.KindRetry:
			es.retry = it.Retry
			es.emit(Record{Kind: RecordRetry, Attempt: attempt, Time: now, Bytes: it.Bytes, Retry: it.Retry})
		}
	}
}

// event measures one event and emits its record.
func (es *EventSource) event(attempt int, start, now time.Time, first bool, it eventstream.Item) {
	r := Record{Kind: RecordEvent, Attempt: attempt, Time: now, EventType: it.Type, EventID: it.ID, Bytes: it.Bytes,
		TTFirst: -1, Latency: -1, Gap: -1, Seq: -1}
	if first {
		r.TTFirst = now.Sub(start)
	}
	if !es.lastEventAt.IsZero() {
		r.Gap = now.Sub(es.lastEventAt)
	}
	es.lastEventAt = now
	f := scanData(it.Data, es.cfg.LatencyField, es.cfg.SenderField)
	if f.hasSent {
		// Clamped at 0: a negative value means "not timed", and clocks of two hosts
		// may disagree by a little.
		r.Latency = max(time.Duration(now.UnixNano()-f.sent), 0)
	}
	if f.hasSender {
		r.Sender = f.sender
		r.DuplicateSender = es.senders.observe(f.sender)
	}
	if s := parseSeq(it.ID); s >= 0 {
		r.Seq = s
		r.Missing, r.Duplicate, r.OutOfOrder = es.seq.observe(s)
	}
	es.emit(r)
	// Counted after the record is out, so a waiter that wakes sees it sent.
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

	rate  int64
	since time.Time
	n     int64
	timer *time.Timer
}

func (f *flowReader) Read(p []byte) (int, error) {
	if f.es.paused.Load() {
		if err := f.es.waitResume(f.ctx); err != nil {
			return 0, err
		}
	}
	rate := f.es.readRate.Load()
	if rate <= 0 {
		f.rate = 0
		return f.r.Read(p)
	}
	if rate != f.rate {
		f.rate, f.since, f.n = rate, time.Now(), 0
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
	for {
		es.mu.Lock()
		if !es.paused.Load() {
			es.mu.Unlock()
			return nil
		}
		if es.resume == nil {
			es.resume = make(chan struct{})
		}
		ch := es.resume
		es.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
