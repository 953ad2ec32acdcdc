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
	"strings"
	"sync/atomic"
	"time"
)

// maxBodyKept bounds the body bytes an exchange keeps for analysis; past it only the
// arrival times and sizes of reads are kept, and the checks say the body was cut.
const maxBodyKept = 8 << 20

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

	Chunks    []chunk
	Body      []byte // decoded body, at most maxBodyKept bytes
	Total     int64  // decoded body bytes read
	Truncated bool   // Total > len(Body)
	End       endKind
	EndErr    error
	EndAt     time.Time
}

// gotResponse reports whether a response head arrived.
func (e *exchange) gotResponse() bool { return e != nil && e.Err == nil && e.Status != 0 }

// isStream reports a 200 response whose MIME essence is text/event-stream.
func (e *exchange) isStream() bool {
	return e.gotResponse() && e.Status == http.StatusOK && mimeEssence(e.Header.Get("Content-Type")) == "text/event-stream"
}

// endedAtOnce reports a 200 body that the server ended within the probe window
// without a single event: what makes a browser reconnect in a loop.
func (e *exchange) endedAtOnce() bool {
	return e.gotResponse() && e.Status == http.StatusOK && e.End == endEOF &&
		e.EndAt.Sub(e.HeadersAt) < atOnce && len(parseBody(e.Body, "").Events) == 0
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
	// Until, when set, ends the read early once it returns true for the body so far.
	Until func(body []byte) bool
}

// prober makes requests. It holds one Transport; it is safe for concurrent use.
type prober struct {
	transport *http.Transport
	header    http.Header
}

func newProber(cfg Config) *prober {
	tr := &http.Transport{
		Proxy:               nil, // conformance is about the target, not an environment proxy
		ForceAttemptHTTP2:   true,
		DisableCompression:  true, // Accept-Encoding is set, and decoded, by the probe itself
		MaxIdleConnsPerHost: 4,
		TLSHandshakeTimeout: cfg.Timeout,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: cfg.Insecure}, //nolint:gosec // opt-in --insecure
	}
	return &prober{transport: tr, header: cfg.Header}
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
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, rawURL, nil)
	if err != nil {
		ex.Err = err
		return ex
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
	ex.ReqHeader = req.Header.Clone()

	client := &http.Client{
		Transport: p.transport,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			ex.Hops = append(ex.Hops, hop{URL: via[len(via)-1].URL.String(), Status: r.Response.StatusCode, Location: r.Response.Header.Get("Location")})
			return nil
		},
	}

	var headerTimedOut atomic.Bool
	headerTimer := time.AfterFunc(plan.HeaderTimeout, func() { headerTimedOut.Store(true); cancel() })
	ex.Start = time.Now()
	resp, err := client.Do(req)
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
	ex.HeadersAt = time.Now()
	ex.Connected = true
	ex.Status = resp.StatusCode
	ex.Proto = resp.Proto
	ex.ProtoMajor = resp.ProtoMajor
	ex.Header = resp.Header
	ex.ContentLength = resp.ContentLength
	ex.Encoding = strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	defer resp.Body.Close()
	if plan.Window <= 0 {
		ex.End = endStopped
		ex.EndAt = ex.HeadersAt
		return ex
	}

	var stopped atomic.Bool
	windowTimer := time.AfterFunc(plan.Window, func() { stopped.Store(true); cancel() })
	defer windowTimer.Stop()
	var body io.Reader = resp.Body
	if ex.Encoding == "gzip" {
		body = &lazyGzip{r: resp.Body}
	}
	buf := make([]byte, 4096)
	for {
		n, err := body.Read(buf)
		now := time.Now()
		if n > 0 {
			if plan.FromFirstByte && len(ex.Chunks) == 0 {
				windowTimer.Reset(plan.Window)
			}
			ex.Chunks = append(ex.Chunks, chunk{At: now, Off: ex.Total, N: n})
			if room := maxBodyKept - len(ex.Body); room > 0 {
				ex.Body = append(ex.Body, buf[:min(n, room)]...)
			}
			ex.Total += int64(n)
			ex.Truncated = ex.Total > int64(len(ex.Body))
			if plan.Until != nil && plan.Until(ex.Body) {
				ex.End, ex.EndAt = endStopped, now
				return ex
			}
		}
		if err != nil {
			ex.EndAt = now
			switch {
			case stopped.Load() || ctx.Err() != nil:
				ex.End = endStopped
			case errors.Is(err, io.EOF):
				ex.End = endEOF
			default:
				ex.End, ex.EndErr = endError, err
			}
			return ex
		}
	}
}

// lazyGzip opens the gzip stream on the first Read, so that waiting for the gzip
// header happens inside the timed read loop.
type lazyGzip struct {
	r  io.Reader
	zr *gzip.Reader
}

func (l *lazyGzip) Read(p []byte) (int, error) {
	if l.zr == nil {
		zr, err := gzip.NewReader(l.r)
		if err != nil {
			return 0, fmt.Errorf("gzip: %w", err)
		}
		l.zr = zr
	}
	return l.zr.Read(p)
}
