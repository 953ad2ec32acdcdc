package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
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
	// Method is the stream request's method (a stream asked for with POST, as
	// fetch-based EventSource clients do). Default GET.
	Method string
	// Body is the request body, sent with its Content-Length on every attempt; a
	// {session} in it is replaced by Session. A GET has none.
	Body string
	// AcceptEncoding is the request's Accept-Encoding. Default DefaultAcceptEncoding
	// (Chromium's: gzip, deflate, br, zstd); AcceptIdentity ("identity") asks for
	// an uncompressed body. Whatever was asked, a gzip, deflate, br or zstd response
	// is decoded.
	AcceptEncoding string
	// MaxDecodedRatio is the decompression-bomb limit: a compressed body may decode
	// to at most this many bytes per received byte (after its first MiB).
	// Default DefaultMaxDecodedRatio.
	MaxDecodedRatio int
	// LastEventID seeds the last event ID string, as if a previous connection had
	// seen it: the first request sends it, and id tracking starts from it.
	LastEventID string
	// Retry is the reconnection time until the server sends retry. Default 3 s.
	Retry time.Duration
	// Jitter lengthens each reconnection delay by a random share up to Jitter.
	Jitter float64
	// MinReconnect is the shortest reconnection delay, whatever the server's retry
	// (retry: 0 with streams that end at once must not flood the target).
	// Default DefaultMinReconnect.
	MinReconnect time.Duration
	// MaxBackoff caps the exponential backoff: while attempts keep ending within
	// QuickEnd of their start, each reconnection waits twice as long as the one
	// before, up to MaxBackoff (or the retry, when longer). Default DefaultMaxBackoff.
	MaxBackoff time.Duration
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
	// SentField is the JSON path of the event data's send time ("ts",
	// "meta.sent_at") and SentUnit how it is written; SenderField names the field
	// holding the sender. Defaults "sent_unix_ns", ns for that field (auto for any
	// other) and "sender".
	SentField   string
	SentUnit    SentUnit
	SenderField string
	// EventLoops, when set, reads the body of an HTTP/1.1 response (cleartext or TLS) without
	// Content-Encoding on one of these loops instead of the source's own goroutine
	// (see NewEventLoops). The records are the same, but the loop sends them: a
	// receiver that stops reading out stalls every stream on that loop, so give the
	// sources of one set of loops receivers that do not wait on each other. A loop
	// sends a wake-up's records in one burst at its end; their times are when the
	// bytes arrived (the kernel's receive time), and WaitEvents counts an event once
	// its record is sent. nil: every body is read on the source's goroutine. Set, it
	// also lets the body of an HTTP/2 response without Content-Encoding be parsed on
	// its connection's reader goroutine (h2push.go), with the same caveat for that
	// connection's streams.
	EventLoops *EventLoops
	// MarkPrefix, when set, is a Publisher's Prefix: every event's data is searched
	// for its marks (Record.Mark and the fields after it).
	MarkPrefix string
	// Scheduled is when the first attempt was meant to start (Record.Scheduled);
	// zero means when Run starts.
	Scheduled time.Time

	// records, set by a Load, lends the records of events, comments and retry fields
	// (EventSource.itemRecord).
	records *recordPool
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
	out Sink

	readRate atomic.Int64
	rateGen  atomic.Uint64 // bumped by SetReadRate: pacing restarts from then
	paused   atomic.Bool

	// Owned by the Run goroutine. Kept here rather than in locals so that the frames
	// under a blocked read stay small (see Run).
	parser      *eventstream.Parser
	seq         seqTracker
	marks       *seqTracker // publish-driven marks; nil until the first one
	senders     senderTracker
	retry       time.Duration
	lastEventAt time.Time
	start       time.Time // of the current attempt
	scheduled   time.Time // when the current attempt was due
	closedAt    time.Time // end of the previous attempt
	wireAt      time.Time // the current attempt's last bytes (head or item); zero before its head
	delay       time.Duration
	quickEnds   int    // consecutive attempts that ended within QuickEnd of their start
	seenID      string // last event ID string as last published to lastID
	item        eventstream.Item
	pushParser  bool        // the current body is read with a push parser (event loops)
	parserPush  bool        // parser was made by NewPush
	first       bool        // no event yet in this attempt
	actx        *attemptCtx // the current attempt's
	batch       *evloop     // set while a loop parses this source's bytes: emit batches there
	readAt      time.Time   // set by a loop: when the bytes being parsed were received
	onEnd       func()      // set by the engine: called when Run ends
	spare       *Record     // the item record of a source without a pool, made at its first item

	mu          sync.Mutex
	final       CloseReason   // a deliberate end (client close/reset, stopped, cancelled)
	leaveDelay  time.Duration // how long to stay away
	cancel      func()        // cancels the current attempt (or reconnect wait)
	conn        net.Conn
	tcp         *net.TCPConn
	looped      *loopStream   // the body is on an event loop: interrupts go there
	resume      chan struct{} // closed by ResumeReading
	notify      chan struct{} // closed at the next state change, for waiters
	opens       int64
	events      int64
	lastID      string
	reason      CloseReason // reason of the latest Closed record
	rst         bool
	leaving     bool // Leave was called: drop the connection, come back
	noReconnect bool
	open        bool
	ended       bool
	done        chan struct{}
}

// NewEventSource returns a source of browser b that puts its records into out (nil:
// records are dropped, the counters behind WaitEvents still work), by Sink's rules.
// The source does nothing until Run is called.
func (b *Browser) NewEventSource(cfg SourceConfig, out Sink) (*EventSource, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("stream URL %q: %w", cfg.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("stream URL %q: want an absolute http:// or https:// URL", cfg.URL)
	}
	cfg = cfg.resolved()
	if err := errors.Join(cfg.requestProblems()...); err != nil {
		return nil, err
	}
	cfg.Body = strings.ReplaceAll(cfg.Body, "{session}", cfg.Session)
	es := &EventSource{b: b, cfg: cfg, url: u, out: out, retry: cfg.Retry, done: make(chan struct{}),
		noReconnect: cfg.NoReconnect, lastID: cfg.LastEventID}
	es.readRate.Store(cfg.ReadRate)
	es.seq.seed(cfg.LastEventID, time.Now().UnixNano())
	return es, nil
}

// requestProblems judges the fields of a resolved SourceConfig that Config passes on
// too (so that Config.Validate reports what NewEventSource would refuse).
func (c SourceConfig) requestProblems() []error {
	var errs []error
	if err := validSentPath(c.SentField); err != nil {
		errs = append(errs, err)
	}
	if !c.SentUnit.Valid() {
		errs = append(errs, fmt.Errorf("sent unit %q: want auto, ns, us, ms, s or rfc3339", c.SentUnit))
	}
	if err := validStreamRequest(c.Method, c.Body); err != nil {
		errs = append(errs, err)
	}
	if strings.ContainsAny(c.AcceptEncoding, "\r\n") {
		errs = append(errs, fmt.Errorf("accept encoding %q: contains a line break", c.AcceptEncoding))
	}
	return errs
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
	if es.looped != nil {
		es.looped.interrupt(rst)
	}
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
func (es *EventSource) SetReadRate(bytesPerSecond int64) {
	es.readRate.Store(bytesPerSecond)
	es.rateGen.Add(1)
}

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
func (es *EventSource) Events() int64 { return locked(es, &es.events) }

// Opens returns how many connections opened (200 with text/event-stream) so far.
func (es *EventSource) Opens() int64 { return locked(es, &es.opens) }

// IsOpen reports whether a connection is open now.
func (es *EventSource) IsOpen() bool { return locked(es, &es.open) }

// LastEventID returns the last event ID string: what a reconnect sends.
func (es *EventSource) LastEventID() string { return locked(es, &es.lastID) }

// Reason returns the reason of the latest Closed record ("" before the first one);
// after Done it is why the source ended.
func (es *EventSource) Reason() CloseReason { return locked(es, &es.reason) }

// locked reads *field, one of es's fields guarded by es.mu.
func locked[T any](es *EventSource, field *T) T {
	es.mu.Lock()
	defer es.mu.Unlock()
	return *field
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
	return es.await(ctx, &es.notify, func() (bool, error) {
		switch {
		case cond():
			return true, nil
		case es.ended:
			return true, ErrSourceEnded
		}
		return false, nil
	})
}

// await blocks until check, called with es.mu held, says done (with its error) or
// ctx ends. In between it waits on *wake, made here under es.mu and closed (and set
// to nil) by whoever changes what check reads.
func (es *EventSource) await(ctx context.Context, wake *chan struct{}, check func() (bool, error)) error {
	for {
		es.mu.Lock()
		if done, err := check(); done {
			es.mu.Unlock()
			return err
		}
		if *wake == nil {
			*wake = make(chan struct{})
		}
		ch := *wake
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

// emit puts r into out; on an event loop it goes to the loop's batch instead (true),
// which the loop puts at the end of its wake-up.
func (es *EventSource) emit(r *Record) (batched bool) {
	if es.out == nil {
		return false
	}
	r.Stream = es.cfg.Stream
	r.Browser = es.b.cfg.ID
	r.Session = es.cfg.Session
	es.wire(r)
	if es.batch != nil {
		es.batch.batch(es, r)
		return true
	}
	es.out.Put(r)
	return false
}

// recordPool lends item records: one per event, comment or retry field is filled,
// emitted and given back. A record put into the Sink goes by pointer, so one made in
// a handler's frame escapes to the heap: allocated per event, it cost about 2 us of
// CPU per event at 10,000 streams (scripts/bench capacity, that build and the pool's
// alternated: 12.4 against 10.4 us). A Load's sources share one pool: a spare record
// per source would cost 0.5 KB per stream.
type recordPool struct{ p sync.Pool }

func newRecordPool() *recordPool {
	return &recordPool{p: sync.Pool{New: func() any { return new(Record) }}}
}

// itemRecord is a zeroed record for an item's handler to fill and emit, from the
// load's pool, or the source's spare (a source's records are made one at a time).
func (es *EventSource) itemRecord() *Record {
	if p := es.cfg.records; p != nil {
		return p.p.Get().(*Record)
	}
	if es.spare == nil {
		es.spare = new(Record)
	}
	return es.spare
}

// releaseRecord gives back an item record once emitted (the Sink keeps no pointer to it).
func (es *EventSource) releaseRecord(r *Record) {
	*r = Record{} // keeps no strings alive, and is zero for its next use
	if p := es.cfg.records; p != nil {
		p.p.Put(r)
	}
}

// wire sets r.Quiet from the time of the attempt's previous bytes and moves it on:
// the head starts the count, every item and the attempt's end read it.
func (es *EventSource) wire(r *Record) {
	switch r.Kind {
	case RecordHeaders:
		es.wireAt = r.Time
	case RecordEvent, RecordComment, RecordRetry:
		if !es.wireAt.IsZero() {
			r.Quiet = r.Time.Sub(es.wireAt)
			es.wireAt = r.Time
		}
	case RecordClosed:
		if r.Lived > 0 && !es.wireAt.IsZero() {
			r.Quiet = r.Time.Sub(es.wireAt)
		}
		es.wireAt = time.Time{}
	}
}

// Run drives the source until it ends for good: a 204, a failed connection (bad
// status or content type, size limit), a deliberate end (Close, Reset, the engine's
// stop) or ctx's end (Closed reason cancelled). Between connections it waits the
// reconnection time. Why it ended is Reason; call Run once.
//
// Memory: 10,000 sources each park one goroutine in a socket read, so the frames on
// that path are kept small (records are built in helpers that are not inlined): the
// parked stack then fits in 4 KB after the garbage collector shrinks it.
func (es *EventSource) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, es.cancelled)
	es.run()
	<-es.done // an event loop may carry the source on
	stop()
}

// run is Run without watching a context: the engine ends its sources itself, which
// saves each of them a registration in the run's context.
func (es *EventSource) run() {
	es.setup()
	es.attempts(0)
}

//go:noinline
func (es *EventSource) setup() {
	es.scheduled = es.cfg.Scheduled
	if es.scheduled.IsZero() {
		es.scheduled = time.Now()
	}
}

func (es *EventSource) cancelled() { es.end(CloseCancelled, false) }

//go:noinline
func (es *EventSource) finish() {
	es.mu.Lock()
	es.ended = true
	es.open = false
	es.changedLocked()
	es.mu.Unlock()
	close(es.done)
	if es.onEnd != nil {
		es.onEnd()
	}
}

// newAttemptLocked gives the source a fresh attempt context, reachable by the
// controls through es.cancel.
func (es *EventSource) newAttemptLocked() {
	es.actx = &attemptCtx{}
	es.cancel = es.actx.cancel
	if es.final != "" {
		es.actx.cancel()
	}
}

// begin creates the attempt's context and, before a reconnect, waits the delay and
// emits the Reconnect record. It returns false when the source ended before the
// attempt could start, after emitting that attempt's Closed record.
//
//go:noinline
func (es *EventSource) begin(attempt int) bool {
	es.mu.Lock()
	es.newAttemptLocked()
	final := es.final
	es.mu.Unlock()
	if final == "" && attempt > 0 {
		final = es.sleep(es.delay)
	}
	if final != "" {
		// Ended before the attempt: this Closed record has no Opened before it, so
		// that the last Closed of a stream always says why it ended.
		es.closed(attempt, final)
		return false
	}
	if attempt > 0 {
		es.emit(&Record{Kind: RecordReconnect, Attempt: attempt, Time: time.Now(), Delay: time.Since(es.closedAt),
			Retry: es.retry, LastEventID: es.LastEventID(), QuickEnds: es.quickEnds})
	}
	return true
}

// again decides after an attempt whether and when to reconnect.
//
//go:noinline
func (es *EventSource) again(reason CloseReason) bool {
	es.actx.cancel()
	es.closedAt = time.Now()
	es.mu.Lock()
	leaving, leaveDelay := es.leaving, es.leaveDelay
	es.leaving = false
	noReconnect := es.noReconnect
	es.mu.Unlock()
	switch {
	case reason == CloseEOF || reason == CloseNetworkError:
		if noReconnect {
			return false
		}
		es.delay = es.reconnectDelay()
		if es.cfg.Jitter > 0 {
			es.delay += time.Duration(rand.Float64() * es.cfg.Jitter * float64(es.delay))
		}
	case reason == CloseChurn && leaving:
		es.delay = leaveDelay
	default:
		return false
	}
	es.scheduled = es.closedAt.Add(es.delay)
	return true
}

// reconnectDelay is the wait before reconnecting after an attempt that ended at
// es.closedAt: the retry, never shorter than MinReconnect, doubled for each attempt
// in a row after the first that ended within QuickEnd of its start, up to MaxBackoff.
// An attempt that lived longer resets the backoff.
func (es *EventSource) reconnectDelay() time.Duration {
	if es.closedAt.Sub(es.start) < QuickEnd {
		es.quickEnds++
	} else {
		es.quickEnds = 0
	}
	return backoff(es.retry, es.cfg.MinReconnect, es.cfg.MaxBackoff, es.quickEnds)
}

// backoff is the pure pacing rule of reconnectDelay: base max(retry, floor), doubled
// quickEnds-1 times, capped at max(limit, base).
func backoff(retry, floor, limit time.Duration, quickEnds int) time.Duration {
	d := max(retry, floor)
	limit = max(limit, d)
	for i := 1; i < quickEnds && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// sleep waits d unless the source is ended or told to leave meanwhile; it returns the
// final reason when ended. A Leave during the wait restarts it with the leave delay
// (and a fresh attempt context, since Leave cancelled the current one).
func (es *EventSource) sleep(d time.Duration) CloseReason {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return ""
		case <-es.actx.Done():
			es.mu.Lock()
			final, leaving, leaveDelay := es.final, es.leaving, es.leaveDelay
			es.leaving = false
			if final == "" {
				es.newAttemptLocked()
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
//
//go:noinline
func (es *EventSource) closed(attempt int, reason CloseReason) {
	now := time.Now()
	var lived time.Duration
	es.mu.Lock()
	if es.open {
		lived = now.Sub(es.start)
	}
	es.reason = reason
	es.open = false
	es.changedLocked()
	es.mu.Unlock()
	es.emit(&Record{Kind: RecordClosed, Attempt: attempt, Time: now, Reason: reason, Lived: lived})
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
//
//go:noinline
func (es *EventSource) fail(ctx context.Context, attempt int, reason CloseReason, class ErrorClass, err error) CloseReason {
	if r := es.interrupted(ctx); r != "" {
		es.closed(attempt, r)
		return r
	}
	es.emit(&Record{Kind: RecordError, Attempt: attempt, Time: time.Now(), Class: errorClass(err, class), Err: err.Error()})
	es.closed(attempt, reason)
	return reason
}

//go:noinline
func (es *EventSource) opened(attempt int) {
	es.start = time.Now()
	es.emit(&Record{Kind: RecordOpened, Attempt: attempt, Time: es.start, Scheduled: es.scheduled})
}

// consume checks the final response and, when it opens the stream, reads it to its
// end, emitting Event, Comment and Retry records. The source's goroutine spends its
// life in the parser.Next call below, so this frame holds nothing but the loop.
func (es *EventSource) consume(ctx context.Context, attempt int, x *exchange) CloseReason {
	if reason := es.accept(ctx, attempt, x); reason != "" {
		return reason
	}
	for {
		var err error
		es.item, err = es.parser.Next()
		if err != nil {
			return es.bodyEnded(ctx, attempt, err)
		}
		es.handle(attempt)
	}
}
