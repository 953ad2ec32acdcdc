package runner

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// Defaults of RequestConfig.
const (
	DefaultRequestMethod  = http.MethodPost
	DefaultErrorPath      = "error"
	DefaultMaxConcurrency = 100
	DefaultRequestTimeout = 60 * time.Second
)

// requestDrainSlack is what the default Drain adds to Timeout: room for a request sent
// later than its arrival (a busy client) to run its whole Timeout.
const requestDrainSlack = time.Second

// terminalDrain bounds the read after a terminal event that lets an HTTP/1.1
// connection be reused (the server ends the body right after it, normally).
const terminalDrain = 100 * time.Millisecond

// RequestConfig describes a run of request streams: requests that each get a finite
// event stream back (an OpenAI-style chat completion with "stream": true, an
// Anthropic-style message stream, the progress stream of a job), sent open-loop at a
// scheduled rate. Zero values mean the defaults given per field; Validate reports every
// problem at once.
type RequestConfig struct {
	// Method is the HTTP method. Default DefaultRequestMethod (POST).
	Method string
	// URL is the request URL template (http or https): {n} is replaced by the request
	// number (0, 1, ...), {session} by its session id, path-escaped. Required.
	URL string
	// Header holds extra request headers. Accept: text/event-stream is sent unless set
	// here, and Content-Type: application/json with a body unless set here.
	Header http.Header
	// Body is the request body template, with {n} and {session} replaced as written
	// (no escaping). Used when Bodies is empty; "" sends no body.
	Body string
	// Bodies are body templates (LoadBodies reads them from a file, one JSON body per
	// line); request n uses Bodies[n % len] or, with RandomBodies, one drawn from the
	// run's seed.
	Bodies       []string
	RandomBodies bool
	// SessionPrefix makes request n's session id SessionPrefix + n.
	// Default DefaultSessionPrefix ("s-").
	SessionPrefix string

	// EndData ends the stream at the first event whose data is exactly this (e.g.
	// "[DONE]"); EndEvent at the first event of this type (e.g. "message_stop"). With
	// either set, a body that ends before is "ended without terminal event"; with
	// neither, the end of the body is the terminal event.
	EndData  string
	EndEvent string
	// ContentPath is the JSON path of the content in an event's data (e.g.
	// "choices.0.delta.content"): an event whose value there is a non-empty string
	// carries content, and the first one is the first token. Without it no event
	// counts as content (TTFT is not measured).
	ContentPath string
	// ErrorPath is the JSON path whose presence (any value but null) makes an event an
	// error reported inside the stream; it ends the request (EndErrorEvent).
	// Default DefaultErrorPath ("error").
	ErrorPath string
	// UsagePath is the JSON path of the server's own count of generated tokens (e.g.
	// "usage.completion_tokens"); the last value seen is RequestRecord.Usage.
	UsagePath string

	// Rate is the scheduled arrival rate in requests per second. Required.
	Rate float64
	// Arrival is the arrival process (default constant).
	Arrival Arrival
	// Seed makes the arrivals and random body choice reproducible (default 0).
	Seed uint64
	// MaxConcurrency caps the requests in flight; a request due while the cap is
	// reached waits in the client, and that wait counts in its latencies.
	// Default DefaultMaxConcurrency.
	MaxConcurrency int
	// Requests bounds the run by count, Duration by the time over which arrivals are
	// scheduled; at least one is required, with both the first reached ends it.
	Requests int
	Duration time.Duration
	// Timeout bounds each request from when it is sent. Default DefaultRequestTimeout.
	Timeout time.Duration
	// Drain is how long after the last scheduled arrival requests may still be sent
	// and run; then requests still waiting in the client are dropped (EndDropped) and
	// those running cancelled (EndCancelled). Default Timeout plus requestDrainSlack,
	// so that a request sent a little after its arrival (the client's own lag) still
	// ends by its own Timeout rather than by the run's end.
	Drain time.Duration

	// Shard makes this process send only requests n with n % Count == Index, on the
	// schedule of the whole run (numbers, sessions, bodies and due times stay global),
	// so that shards together make exactly the run one process would.
	Shard Shard

	// Insecure skips TLS certificate verification.
	Insecure bool
	// DialTimeout bounds TCP connect plus TLS handshake. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxEventSize and MaxLineSize are the parser's limits in bytes (0: 1 MiB).
	MaxEventSize int
	MaxLineSize  int
}

// Resolved returns c with the defaults filled in.
func (c RequestConfig) Resolved() RequestConfig {
	c.Method = cmp.Or(c.Method, DefaultRequestMethod)
	c.SessionPrefix = cmp.Or(c.SessionPrefix, DefaultSessionPrefix)
	c.ErrorPath = cmp.Or(c.ErrorPath, DefaultErrorPath)
	c.MaxConcurrency = cmp.Or(c.MaxConcurrency, DefaultMaxConcurrency)
	c.Timeout = cmp.Or(c.Timeout, DefaultRequestTimeout)
	c.Drain = cmp.Or(c.Drain, c.Timeout+requestDrainSlack)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.Shard.Count = cmp.Or(c.Shard.Count, 1)
	return c
}

// Validate reports every problem with c (after defaults) at once.
func (c RequestConfig) Validate() error {
	r := c.Resolved()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !validMethod(r.Method) {
		bad("method %q: not an HTTP method token", r.Method)
	}
	if err := urlProblem("url", "e.g. http://127.0.0.1:8080/v1/chat/completions", c.URL, r.requestURL(0, "s-0")); err != nil {
		errs = append(errs, err)
	}
	if c.EndData != "" && c.EndEvent != "" {
		bad("end data %q and end event %q: set one terminal, not both", c.EndData, c.EndEvent)
	}
	for _, p := range []struct{ name, path string }{{"content path", c.ContentPath}, {"error path", r.ErrorPath}, {"usage path", c.UsagePath}} {
		if _, err := ParseJSONPath(p.path); err != nil {
			bad("%s: %v", p.name, err)
		}
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		bad("rate: want a number of requests per second > 0, got %v", c.Rate)
	}
	if err := c.Arrival.Validate(); err != nil {
		bad("%v", err)
	}
	if c.MaxConcurrency < 0 {
		bad("max concurrency: %d is negative", c.MaxConcurrency)
	}
	if c.Requests < 0 {
		bad("requests: %d is negative", c.Requests)
	}
	if c.Requests == 0 && c.Duration <= 0 {
		bad("requests or duration: one bound is required")
	}
	n := float64(c.Requests)
	if c.Requests == 0 {
		n = c.Rate * c.Duration.Seconds()
	}
	if n > maxScheduled {
		bad("run of about %.0f requests: at most %d", n, maxScheduled)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"duration", c.Duration}, {"timeout", c.Timeout}, {"drain", c.Drain}, {"dial timeout", c.DialTimeout}} {
		if d.v < 0 {
			bad("%s: %v is negative", d.name, d.v)
		}
	}
	if c.Shard.Count < 0 {
		bad("shard count: %d is negative", c.Shard.Count)
	}
	if c.Shard.Index < 0 || c.Shard.Index >= r.Shard.Count {
		bad("shard index: %d is outside 0..%d", c.Shard.Index, r.Shard.Count-1)
	}
	if c.MaxEventSize < 0 || c.MaxLineSize < 0 {
		bad("max event size %d and max line size %d: must be >= 0", c.MaxEventSize, c.MaxLineSize)
	}
	return errors.Join(errs...)
}

// validMethod reports an RFC 9110 token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := range len(m) {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (c RequestConfig) session(n int) string { return c.SessionPrefix + strconv.Itoa(n) }

func (c RequestConfig) requestURL(n int, session string) string {
	return strings.NewReplacer("{n}", strconv.Itoa(n), "{session}", url.PathEscape(session)).Replace(c.URL)
}

func expandBody(tmpl string, n int, session string) string {
	if strings.IndexByte(tmpl, '{') < 0 {
		return tmpl
	}
	return strings.NewReplacer("{n}", strconv.Itoa(n), "{session}", session).Replace(tmpl)
}

// LoadBodies reads request bodies, one JSON value per line; blank lines are skipped.
// A line that is not JSON (once {n} and {session} are filled in) is an error naming
// its line number; so is a file with no body.
func LoadBodies(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var bodies []string
	var errs []error
	for line := 1; sc.Scan(); line++ {
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		if !json.Valid([]byte(expandBody(b, 0, "s-0"))) {
			errs = append(errs, fmt.Errorf("line %d: not one JSON value", line))
			if len(errs) == 10 {
				break
			}
			continue
		}
		bodies = append(bodies, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading bodies: %w", err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(bodies) == 0 {
		return nil, errors.New("no request body in the file")
	}
	return bodies, nil
}

// EndClass says how a request stream ended.
type EndClass string

// End classes. A request is a success only when it is EndTerminated.
const (
	EndTerminated   EndClass = "terminated"     // the terminal event arrived (or, with none configured, the body ended)
	EndNoTerminal   EndClass = "no-terminal"    // the body ended without the terminal event
	EndErrorEvent   EndClass = "error-event"    // an event reported an error (ErrorPath) inside the response
	EndHTTPError    EndClass = "http-error"     // the status was not 2xx, or the type not text/event-stream
	EndTimeout      EndClass = "timeout"        // the request ran past Timeout
	EndNetworkError EndClass = "network-error"  // dial, TLS, write or read error
	EndProtocol     EndClass = "protocol-error" // a line or event passed the parser's size limit
	EndCancelled    EndClass = "cancelled"      // the run ended (Drain passed, or its context) while it ran
	EndDropped      EndClass = "dropped"        // never sent: the run ended while it waited in the client
)

// RequestRecordKind says which of RequestRecord's fields are meaningful.
type RequestRecordKind uint8

// The kinds of RequestRecord: a request emits one RequestChunk per event it receives,
// then exactly one RequestEnd (a dropped request only the RequestEnd).
const (
	RequestChunk RequestRecordKind = iota + 1 // an event of the response arrived
	RequestEnd                                // the request ended, see End
)

// String returns "chunk" or "end".
func (k RequestRecordKind) String() string {
	switch k {
	case RequestChunk:
		return "chunk"
	case RequestEnd:
		return "end"
	}
	return "unknown"
}

// RequestRecord is one observation of one request stream. Every latency is measured
// from the request's scheduled time, not from when the client got round to sending it,
// so time spent waiting in the client (the concurrency cap reached, the runner behind)
// is in the latency, and is also given apart as Waited: subtracting it gives the
// service time a naive client would report. Durations not measured are negative.
type RequestRecord struct {
	Kind      RequestRecordKind
	Request   int    // request number n, from 0 in schedule order
	Session   string // its session id
	Time      time.Time
	Scheduled time.Time // when the arrival process made the request due

	// Chunk.
	Since     time.Duration // Scheduled -> this event
	Gap       time.Duration // since the previous event of this request; negative on the first
	TokenGap  time.Duration // content events: since the previous content event; negative otherwise
	EventType string
	Bytes     int  // body bytes consumed since the previous event (comments included)
	Content   bool // the event carries non-empty content (ContentPath)
	// ContentBytes (also on End: the total) is the decoded content length in bytes.
	ContentBytes int
	Terminal     bool // this is the terminal event
	ErrorEvent   bool // this event reported an error (ErrorPath)

	// End.
	Sent      time.Time     // when the request was sent; zero when dropped
	Waited    time.Duration // Scheduled -> Sent: time waiting in the client
	TTHeaders time.Duration // Scheduled -> response head
	TTFT      time.Duration // Scheduled -> first content event
	TTLast    time.Duration // Scheduled -> last content event
	// E2E is Scheduled -> the end: the terminal event, the error event, the end of
	// the body, the failure or the timeout; not the last content event (TTLast).
	E2E           time.Duration
	Status        int    // HTTP status; 0 when none arrived
	Proto         string // "HTTP/1.1", "HTTP/2.0"; "" when no response arrived
	Events        int    // events received
	ContentEvents int    // events with content
	BodyBytes     int64  // body bytes consumed
	Usage         int64  // the server's token count (UsagePath); -1 when none was read
	End           EndClass
	Err           string // what went wrong, one line; "" when terminated
}

// RequestRun summarises a run of request streams; the records carry the rest.
type RequestRun struct {
	Start     time.Time
	Scheduled int // requests in the schedule (of this shard)
	Sent      int // requests sent
	Dropped   int // due but never sent (EndDropped)
	NotDue    int // not yet due when the run's context ended (no record)
	// ScheduledRate is (Scheduled-1) / (last due time - first due time); AchievedRate
	// is (Sent-1) / (last send - first due time): the same measure of the sends that
	// happened. 0 with fewer than 2 requests.
	ScheduledRate float64
	AchievedRate  float64
	// MaxWaited is the longest time a sent request waited in the client.
	MaxWaited time.Duration
	Elapsed   time.Duration // Start -> the last request ended
}

// RunRequests sends the requests of cfg on their schedule and emits their records on
// out, which the caller must keep draining (a blocked send stalls the request that
// makes it). It returns when every request has ended: at the latest Drain after the
// last scheduled arrival, or soon after ctx ends. The error is a configuration problem.
func RunRequests(ctx context.Context, cfg RequestConfig, out chan<- RequestRecord) (RequestRun, error) {
	if err := cfg.Validate(); err != nil {
		return RequestRun{}, err
	}
	c := cfg.Resolved()
	rr := newRequestRunner(c, out)
	defer rr.tr.CloseIdleConnections()
	return rr.run(ctx), nil
}

type requestRunner struct {
	cfg                     RequestConfig
	out                     chan<- RequestRecord
	tr                      *http.Transport
	client                  *http.Client
	content, errPath, usage JSONPath
	parserCfg               eventstream.Config
	mu                      sync.Mutex // guards the fields below
	lastSent                time.Time
	maxWaited               time.Duration
	lastEnd                 time.Time
	sent                    int
}

func newRequestRunner(c RequestConfig, out chan<- RequestRecord) *requestRunner {
	rr := &requestRunner{cfg: c, out: out}
	rr.content, _ = ParseJSONPath(c.ContentPath)
	rr.errPath, _ = ParseJSONPath(c.ErrorPath)
	rr.usage, _ = ParseJSONPath(c.UsagePath)
	rr.parserCfg = eventstream.Config{MaxEventSize: c.MaxEventSize, MaxLineSize: c.MaxLineSize}
	rr.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: c.DialTimeout,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: c.Insecure}, //nolint:gosec // opt-in
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        c.MaxConcurrency,
		MaxIdleConnsPerHost: c.MaxConcurrency,
		IdleConnTimeout:     90 * time.Second,
		// A compressed event stream is buffered by the decompressor: never ask for one.
		DisableCompression: true,
	}
	rr.client = &http.Client{
		Transport: rr.tr,
		// A request stream is not an EventSource: a redirect is an answer to report.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return rr
}

func (rr *requestRunner) run(ctx context.Context) RequestRun {
	c := rr.cfg
	offsets := Schedule(c.Arrival, c.Rate, c.Seed, c.Requests, c.Duration)
	// This shard sends requests own(0), own(1), ... own(count-1).
	own := func(k int) int { return c.Shard.Index + k*c.Shard.Count }
	count := 0
	if len(offsets) > c.Shard.Index {
		count = (len(offsets) - c.Shard.Index + c.Shard.Count - 1) / c.Shard.Count
	}
	res := RequestRun{Scheduled: count}
	start := time.Now()
	res.Start = start
	if count == 0 {
		return res
	}
	first, last := offsets[own(0)], offsets[own(count-1)]
	if count >= 2 && last > first {
		res.ScheduledRate = float64(count-1) / (last - first).Seconds()
	}
	runCtx, cancel := context.WithDeadline(ctx, start.Add(last+c.Drain))
	defer cancel()
	bodyRng := rand.New(rand.NewPCG(c.Seed^0x5bd1e995, c.Seed+1))
	slots := make(chan struct{}, c.MaxConcurrency)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var wg sync.WaitGroup
	next := 0 // of this shard's requests
dispatch:
	for ; next < count; next++ {
		n := own(next)
		due := start.Add(offsets[n])
		if !waitUntil(runCtx, timer, due) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-runCtx.Done():
			break dispatch
		}
		if runCtx.Err() != nil {
			<-slots
			break
		}
		body := c.bodyOf(n, bodyRng)
		wg.Go(func() {
			defer func() { <-slots }()
			rr.do(runCtx, n, due, body)
		})
	}
	rr.dropRest(&res, start, offsets, own, next, count)
	wg.Wait()
	rr.summarise(&res, start, first)
	return res
}

// bodyOf returns the body template of request n: Body, or one of Bodies.
func (c RequestConfig) bodyOf(n int, rng *rand.Rand) string {
	switch {
	case len(c.Bodies) == 0:
		return c.Body
	case c.RandomBodies:
		return c.Bodies[rng.IntN(len(c.Bodies))]
	}
	return c.Bodies[n%len(c.Bodies)]
}

// dropRest settles the shard's requests from next on after dispatch stopped: those
// already due were never sent (the run ran out of time) and end as dropped; from the
// first not yet due (ctx ended) on they are counted as not due.
func (rr *requestRunner) dropRest(res *RequestRun, start time.Time, offsets []time.Duration, own func(int) int, next, count int) {
	now := time.Now()
	for ; next < count; next++ {
		n := own(next)
		due := start.Add(offsets[n])
		if due.After(now) {
			res.NotDue = count - next
			return
		}
		res.Dropped++
		rr.out <- RequestRecord{
			Kind: RequestEnd, Request: n, Session: rr.cfg.session(n), Time: now, Scheduled: due,
			Waited: now.Sub(due), TTHeaders: -1, TTFT: -1, TTLast: -1, E2E: -1, Usage: -1,
			End: EndDropped, Err: "never sent: the run ended while it waited in the client",
		}
	}
}

// summarise fills in what the requests sent measured, once they have all ended.
func (rr *requestRunner) summarise(res *RequestRun, start time.Time, first time.Duration) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	res.Sent = rr.sent
	res.MaxWaited = rr.maxWaited
	if firstDue := start.Add(first); rr.sent >= 2 && rr.lastSent.After(firstDue) {
		res.AchievedRate = float64(rr.sent-1) / rr.lastSent.Sub(firstDue).Seconds()
	}
	if !rr.lastEnd.IsZero() {
		res.Elapsed = rr.lastEnd.Sub(start)
	} else {
		res.Elapsed = time.Since(start)
	}
}

// requestStream is one request in flight.
type requestStream struct {
	rr        *requestRunner
	rec       RequestRecord // the End record being built
	prevEvent time.Time
	prevToken time.Time
	endAt     time.Time // the terminal or error event; zero for other ends
}

// do sends request n, due at scheduled, reads its stream and emits its records.
func (rr *requestRunner) do(runCtx context.Context, n int, scheduled time.Time, bodyTmpl string) {
	c := rr.cfg
	sent := time.Now()
	rr.mu.Lock()
	rr.sent++
	if sent.After(rr.lastSent) {
		rr.lastSent = sent
	}
	rr.maxWaited = max(rr.maxWaited, sent.Sub(scheduled))
	rr.mu.Unlock()

	session := c.session(n)
	rs := &requestStream{rr: rr, rec: RequestRecord{
		Kind: RequestEnd, Request: n, Session: session, Scheduled: scheduled, Sent: sent,
		Waited: sent.Sub(scheduled), TTHeaders: -1, TTFT: -1, TTLast: -1, Usage: -1,
	}}
	end, err := rs.exchange(runCtx, sent, c.requestURL(n, session), expandBody(bodyTmpl, n, session))
	now := time.Now()
	if !rs.endAt.IsZero() {
		now = rs.endAt
	}
	rs.rec.Time = now
	rs.rec.E2E = now.Sub(scheduled)
	rs.rec.End = end
	if err != nil {
		rs.rec.Err = oneLine(err.Error())
	}
	rr.out <- rs.rec
	rr.mu.Lock()
	if now.After(rr.lastEnd) {
		rr.lastEnd = now
	}
	rr.mu.Unlock()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// exchange sends the request and reads the response to its end.
func (rs *requestStream) exchange(runCtx context.Context, sent time.Time, u, body string) (EndClass, error) {
	c := rs.rr.cfg
	ctx, cancel := context.WithDeadline(runCtx, sent.Add(c.Timeout))
	defer cancel()
	// ended classifies a failure once ctx may have ended it.
	deadline := sent.Add(c.Timeout)
	ended := func(err error) (EndClass, error) {
		switch {
		case ctx.Err() != nil && !time.Now().Before(deadline):
			return EndTimeout, fmt.Errorf("no end after %v: %w", c.Timeout, err)
		case runCtx.Err() != nil:
			return EndCancelled, fmt.Errorf("the run ended: %w", err)
		case errors.Is(err, eventstream.ErrTooLarge):
			return EndProtocol, err
		}
		return EndNetworkError, err
	}
	req, err := c.newRequest(ctx, u, body)
	if err != nil {
		return EndNetworkError, err
	}
	resp, err := rs.rr.client.Do(req)
	if err != nil {
		return ended(err)
	}
	defer resp.Body.Close()
	rs.rec.TTHeaders = time.Since(rs.rec.Scheduled)
	rs.rec.Status = resp.StatusCode
	rs.rec.Proto = resp.Proto
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return EndHTTPError, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !isEventStream(ct) {
		return EndHTTPError, fmt.Errorf("content type %q, want text/event-stream", ct)
	}
	p := eventstream.New(resp.Body, rs.rr.parserCfg)
	defer func() { rs.rec.BodyBytes = p.Offset() }()
	pendingBytes := 0
	for {
		it, err := p.Next()
		if err != nil {
			if err == io.EOF {
				if c.EndData == "" && c.EndEvent == "" {
					return EndTerminated, nil
				}
				return EndNoTerminal, errors.New("the body ended without the terminal event")
			}
			return ended(err)
		}
		if it.Kind != eventstream.KindEvent {
			pendingBytes += it.Bytes
			continue
		}
		it.Bytes += pendingBytes
		pendingBytes = 0
		now := time.Now()
		if end, done, err := rs.event(now, &it); done {
			rs.endAt = now
			if end == EndTerminated {
				// Read what follows for a moment, so that a body the server ends right
				// after the terminal event leaves the connection reusable.
				t := time.AfterFunc(terminalDrain, cancel)
				_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
				t.Stop()
			}
			return end, err
		}
	}
}

// newRequest builds the request to u with body (JSON unless Header says otherwise).
func (c RequestConfig) newRequest(ctx context.Context, u, body string) (*http.Request, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// event measures one event and emits its record; done says the request ends here.
func (rs *requestStream) event(now time.Time, it *eventstream.Item) (end EndClass, done bool, err error) {
	rr := rs.rr
	r := RequestRecord{
		Kind: RequestChunk, Request: rs.rec.Request, Session: rs.rec.Session, Time: now,
		Scheduled: rs.rec.Scheduled, Since: now.Sub(rs.rec.Scheduled), Gap: -1, TokenGap: -1,
		EventType: it.Type, Bytes: it.Bytes,
	}
	if !rs.prevEvent.IsZero() {
		r.Gap = now.Sub(rs.prevEvent)
	}
	rs.prevEvent = now
	rs.rec.Events++
	if raw, ok := rr.errPath.Lookup(it.Data); ok && raw != "null" {
		r.ErrorEvent = true
		end, done, err = EndErrorEvent, true, fmt.Errorf("error event: %s", oneLine(raw))
	}
	if raw, ok := rr.content.Lookup(it.Data); ok {
		if n, ok := jsonStringLen(raw); ok && n > 0 {
			r.Content, r.ContentBytes = true, n
			if !rs.prevToken.IsZero() {
				r.TokenGap = now.Sub(rs.prevToken)
			}
			rs.prevToken = now
			if rs.rec.TTFT < 0 {
				rs.rec.TTFT = r.Since
			}
			rs.rec.TTLast = r.Since
			rs.rec.ContentEvents++
			rs.rec.ContentBytes += n
		}
	}
	if raw, ok := rr.usage.Lookup(it.Data); ok {
		if v, ok := jsonInt(raw); ok {
			rs.rec.Usage = v
		}
	}
	c := rr.cfg
	if !done && ((c.EndData != "" && it.Data == c.EndData) || (c.EndEvent != "" && it.Type == c.EndEvent)) {
		r.Terminal = true
		end, done = EndTerminated, true
	}
	rr.out <- r
	return end, done, err
}
