package conform

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// Bounds of what one exchange keeps, whatever the target sends: the first maxBodyKept
// body bytes (for the checks that read raw bytes), the reads that brought them (at
// most maxChunksKept), the first maxItemsKept events and comments and the last
// maxTailKept after them (a reconnect resumes from the latest). Past them only counts
// and times are kept, and the checks say the body was cut.
const (
	maxBodyKept    = 256 << 10
	maxChunksKept  = 1 << 14
	maxItemsKept   = 2048
	maxTailKept    = 256
	maxRetriesKept = 16
	maxHeaderBytes = 256 << 10
)

// The size limits the checks judge (check 23): a line or an event's data over the
// parser's limit, or a compressed body that expands more than maxGzipRatio times once
// past gzipRatioFrom decoded bytes, ends the read of that body.
const (
	maxLineSize   = eventstream.DefaultMaxLineSize
	maxEventSize  = eventstream.DefaultMaxEventSize
	gzipRatioFrom = 1 << 20
	maxGzipRatio  = 256
)

// maxRedirects is the redirect limit of Fetch ("If request's redirect count is 20,
// return a network error").
const maxRedirects = 20

// hop is one redirect that was followed.
type hop struct {
	URL      string
	Status   int
	Location string
}

// chunk is one Read of the (decoded) body: when it returned and which bytes it gave.
type chunk struct {
	At  time.Time
	Off int64 // offset of the first byte in the body
	N   int
}

// endKind says how the read of a body ended.
type endKind uint8

const (
	endNone    endKind = iota // no body was read (no response)
	endEOF                    // the server ended the body cleanly
	endError                  // the body failed (reset, broken chunking, bad gzip)
	endStopped                // the harness stopped reading (window over, condition met)
	endLimit                  // a size limit was passed: EndErr says which (check 23)
)

// exchange is everything observed about one request: what was sent, the redirects,
// the response head and the timeline of the body.
type exchange struct {
	Label     string
	Method    string
	URL       string
	ReqHeader http.Header

	Start     time.Time
	Sent      time.Time // the request was written (zero when it never was)
	Connected bool      // a connection was established (TCP, and TLS when https)
	Err       error     // no response head: why
	TimedOut  bool      // Err is the header timeout

	Hops          []hop
	Status        int
	Proto         string
	ProtoMajor    int
	Header        http.Header
	ContentLength int64 // -1 when unknown
	Encoding      string
	HeadersAt     time.Time
	// TransferEncoding is the response's transfer codings ("chunked"); none with
	// ContentLength -1 on HTTP/1.1 is a body delimited by the connection's close.
	TransferEncoding []string

	Chunks     []chunk // the reads that brought Body, at most maxChunksKept
	Body       []byte  // decoded body, at most maxBodyKept bytes
	Total      int64   // decoded body bytes read
	Wire       int64   // body bytes read from the connection (compressed, when gzip)
	Truncated  bool    // Total > len(Body)
	LastByteAt time.Time
	LongestGap time.Duration // longest wait for a read, from the head on

	// What the spec-exact parser made of the whole body (not only of Body).
	Items    []eventstream.Item // events and comments, the first maxItemsKept
	tail     []eventstream.Item // the last maxTailKept after Items, a ring from tailAt
	tailAt   int
	Events   int64 // events dispatched
	IDEvents int64 // of those, with an id field of their own
	Comments int64
	Retries  []time.Duration // distinct valid retry values, the first maxRetriesKept
	RetryMin time.Duration   // smallest retry value; meaningful when Retries is not empty

	End    endKind
	EndErr error
	EndAt  time.Time
}

// record notes one read of n body bytes that returned at.
func (e *exchange) record(b []byte, at time.Time) {
	last := e.LastByteAt
	if last.IsZero() {
		last = e.HeadersAt
	}
	e.LongestGap = max(e.LongestGap, at.Sub(last))
	e.LastByteAt = at
	if room := maxBodyKept - len(e.Body); room > 0 {
		if len(e.Chunks) < maxChunksKept {
			e.Chunks = append(e.Chunks, chunk{At: at, Off: e.Total, N: len(b)})
		}
		e.Body = append(e.Body, b[:min(len(b), room)]...)
	}
	e.Total += int64(len(b))
	e.Truncated = e.Total > int64(len(e.Body))
}

// addItem counts one parsed item and keeps it while there is room.
func (e *exchange) addItem(it eventstream.Item) {
	switch it.Kind {
	case eventstream.KindEvent:
		e.Events++
		if it.HasID && it.ID != "" {
			e.IDEvents++
		}
	case eventstream.KindComment:
		e.Comments++
	case eventstream.KindRetry:
		if len(e.Retries) == 0 || it.Retry < e.RetryMin {
			e.RetryMin = it.Retry
		}
		if len(e.Retries) < maxRetriesKept && !slices.Contains(e.Retries, it.Retry) {
			e.Retries = append(e.Retries, it.Retry)
		}
		return
	}
	switch {
	case len(e.Items) < maxItemsKept:
		e.Items = append(e.Items, it)
	case len(e.tail) < maxTailKept:
		e.tail = append(e.tail, it)
	default:
		e.tail[e.tailAt] = it
		e.tailAt = (e.tailAt + 1) % maxTailKept
	}
}

// items returns the kept items in order: the first ones, then the last ones (with the
// ones between them left out).
func (e *exchange) items() []eventstream.Item {
	out := append([]eventstream.Item(nil), e.Items...)
	out = append(out, e.tail[e.tailAt:]...)
	return append(out, e.tail[:e.tailAt]...)
}

// events returns the kept events.
func (e *exchange) events() []eventstream.Item {
	if e == nil {
		return nil
	}
	var out []eventstream.Item
	for _, it := range e.items() {
		if it.Kind == eventstream.KindEvent {
			out = append(out, it)
		}
	}
	return out
}

// watched is how long the body was read, from the head.
func (e *exchange) watched() time.Duration { return e.EndAt.Sub(e.HeadersAt) }

// gotResponse reports whether a response head arrived.
func (e *exchange) gotResponse() bool { return e != nil && e.Err == nil && e.Status != 0 }

// isStream reports a 200 response whose MIME essence is text/event-stream.
func (e *exchange) isStream() bool {
	return e.gotResponse() && e.Status == http.StatusOK && mimeEssence(e.Header.Get("Content-Type")) == "text/event-stream"
}

// endedAtOnce reports a 200 body that the server ended within atOnce of its head, with
// or without events: what makes a browser reconnect in a loop.
func (e *exchange) endedAtOnce() bool {
	return e.gotResponse() && e.Status == http.StatusOK && e.End == endEOF && e.watched() < atOnce
}

// atOnce is how soon a body must end after its headers to count as "ended at once".
const atOnce = time.Second

// readPlan says how long to read one response.
type readPlan struct {
	// HeaderTimeout bounds the wait for the response head.
	HeaderTimeout time.Duration
	// Window bounds the body read, counted from the response head. 0 reads no body.
	Window time.Duration
	// FromFirstByte restarts the Window when the first body byte arrives, so that a
	// slow first byte does not shorten the watch that follows it.
	FromFirstByte bool
	// Seed is the parser's initial last event ID (the Last-Event-ID sent).
	Seed string
	// Until, when set, is called with every parsed item and when it arrived; the read
	// ends once it returns true.
	Until func(ex *exchange, it eventstream.Item, at time.Time) bool
}

// prober makes requests. It holds one Transport; it is safe for concurrent use.
type prober struct {
	transport *http.Transport
	header    http.Header
	method    string // sent instead of GET (Config.Method)
	body      string // sent with method (Config.Body)
}

func newProber(cfg Config) *prober {
	tr := &http.Transport{
		Proxy:               nil, // conformance is about the target, not an environment proxy
		ForceAttemptHTTP2:   true,
		DisableCompression:  true, // Accept-Encoding is set, and decoded, by the probe itself
		MaxIdleConnsPerHost: 4,
		// A response head is a few hundred bytes; the default 10 MB would let a hostile
		// target hold that much per request.
		MaxResponseHeaderBytes: maxHeaderBytes,
		TLSHandshakeTimeout:    cfg.Timeout,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: cfg.Insecure}, //nolint:gosec // opt-in --insecure
	}
	return &prober{transport: tr, header: cfg.Header, method: cfg.Method, body: cfg.Body}
}

func (p *prober) close() { p.transport.CloseIdleConnections() }

// fetch sends one request and records the exchange as plan says. hdr is added to the
// configured headers; a value of "" deletes a header. It blocks for at most
// plan.HeaderTimeout plus plan.Window (twice the Window with FromFirstByte), less when
// ctx ends, and never returns nil.
func (p *prober) fetch(ctx context.Context, label, method, rawURL string, hdr http.Header, plan readPlan) *exchange {
	ex := &exchange{Label: label, Method: method, URL: rawURL, ContentLength: -1}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var connected atomic.Bool
	var sent atomic.Int64 // UnixNano of the last WroteRequest (redirects write again)
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { connected.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(time.Now().UnixNano()) },
	}
	req, err := p.newRequest(httptrace.WithClientTrace(ctx, trace), ex, method, rawURL, hdr)
	if err != nil {
		ex.Err = err
		return ex
	}
	var headerTimedOut atomic.Bool
	headerTimer := time.AfterFunc(plan.HeaderTimeout, func() { headerTimedOut.Store(true); cancel() })
	ex.Start = time.Now()
	resp, err := p.client(ex).Do(req)
	headerTimer.Stop()
	ex.Connected = connected.Load()
	if ns := sent.Load(); ns != 0 {
		ex.Sent = time.Unix(0, ns)
	}
	if err != nil {
		ex.Err = err
		if headerTimedOut.Load() {
			ex.TimedOut = true
			ex.Err = fmt.Errorf("no response head within %v", plan.HeaderTimeout)
		}
		return ex
	}
	defer resp.Body.Close()
	ex.setResponse(resp)
	if plan.Window <= 0 {
		ex.End = endStopped
		ex.EndAt = ex.HeadersAt
		return ex
	}
	readBody(ctx, cancel, ex, resp.Body, plan)
	return ex
}

// newRequest builds the request of ex: what an EventSource sends, the configured
// headers, then hdr; a GET becomes the configured method with its body.
func (p *prober) newRequest(ctx context.Context, ex *exchange, method, rawURL string, hdr http.Header) (*http.Request, error) {
	var reqBody io.Reader
	if method == http.MethodGet && p.method != "" {
		method = p.method
		ex.Method = method
		if p.body != "" {
			reqBody = strings.NewReader(p.body)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, reqBody)
	if err != nil {
		return nil, err
	}
	for k, vs := range p.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	// What an EventSource sends (9.2.2: Accept text/event-stream, cache mode no-store),
	// plus gzip so that compression that holds output back can be seen.
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept-Encoding", "gzip")
	for k, vs := range hdr {
		if len(vs) == 1 && vs[0] == "" {
			req.Header.Del(k)
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if reqBody != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	ex.ReqHeader = req.Header.Clone()
	return req, nil
}

// client follows at most maxRedirects redirects, recording each hop in ex.
func (p *prober) client(ex *exchange) *http.Client {
	return &http.Client{
		Transport: p.transport,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			ex.Hops = append(ex.Hops, hop{URL: via[len(via)-1].URL.String(), Status: r.Response.StatusCode, Location: r.Response.Header.Get("Location")})
			return nil
		},
	}
}

// setResponse records the response head.
func (e *exchange) setResponse(resp *http.Response) {
	e.HeadersAt = time.Now()
	e.Connected = true
	e.Status = resp.StatusCode
	e.Proto = resp.Proto
	e.ProtoMajor = resp.ProtoMajor
	e.Header = resp.Header
	e.ContentLength = resp.ContentLength
	e.TransferEncoding = resp.TransferEncoding
	e.Encoding = strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
}

// readBody parses the body into ex for plan.Window (from the first byte with
// FromFirstByte), until plan.Until, the body's end or a limit; cancel ends the request.
func readBody(ctx context.Context, cancel context.CancelFunc, ex *exchange, respBody io.Reader, plan readPlan) {
	var stopped atomic.Bool
	windowTimer := time.AfterFunc(plan.Window, func() { stopped.Store(true); cancel() })
	defer windowTimer.Stop()
	wire := &countingReader{r: respBody}
	var body io.Reader = wire
	if ex.Encoding == "gzip" {
		body = &boundedGzip{wire: wire}
	}
	rec := &recorder{r: body, ex: ex, first: func() {
		if plan.FromFirstByte {
			windowTimer.Reset(plan.Window)
		}
	}}
	parser := eventstream.New(rec, eventstream.Config{MaxLineSize: maxLineSize, MaxEventSize: maxEventSize, LastEventID: plan.Seed})
	defer func() { ex.Wire = wire.n }()
	for {
		it, err := parser.Next()
		now := time.Now()
		if err != nil {
			ex.EndAt = now
			var ge *expansionError
			switch {
			case errors.Is(err, eventstream.ErrTooLarge) || errors.As(err, &ge):
				ex.End, ex.EndErr = endLimit, err
			case stopped.Load() || ctx.Err() != nil:
				ex.End = endStopped
			case errors.Is(err, io.EOF):
				ex.End = endEOF
			default:
				ex.End, ex.EndErr = endError, err
			}
			return
		}
		ex.addItem(it)
		if plan.Until != nil && plan.Until(ex, it, now) {
			ex.End, ex.EndAt = endStopped, now
			return
		}
	}
}

// recorder passes a body through to the parser and records every read in ex.
type recorder struct {
	r     io.Reader
	ex    *exchange
	first func() // called after the first byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		if r.ex.Total == 0 {
			r.first()
		}
		r.ex.record(p[:n], time.Now())
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// expansionError ends a gzip body that expanded past the limit.
type expansionError struct{ out, in int64 }

func (e *expansionError) Error() string {
	return fmt.Sprintf("gzip body expanded %d:1 (%d bytes from %d compressed), over the %d:1 limit", e.out/max(e.in, 1), e.out, e.in, maxGzipRatio)
}

// boundedGzip decodes a gzip body, opening the gzip stream on the first Read (so that
// waiting for the gzip header happens inside the timed read loop), and fails once the
// output passes gzipRatioFrom bytes and maxGzipRatio times the compressed input: a
// decompression bomb is stopped, not decoded whole.
type boundedGzip struct {
	wire *countingReader
	zr   *gzip.Reader
	out  int64
}

func (g *boundedGzip) Read(p []byte) (int, error) {
	if g.zr == nil {
		zr, err := gzip.NewReader(g.wire)
		if err != nil {
			return 0, fmt.Errorf("gzip: %w", err)
		}
		g.zr = zr
	}
	n, err := g.zr.Read(p)
	g.out += int64(n)
	if g.out > gzipRatioFrom && g.out > maxGzipRatio*g.wire.n {
		return n, &expansionError{out: g.out, in: g.wire.n}
	}
	return n, err
}
