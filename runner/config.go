package runner

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Shard selects a disjoint share of a run so that several processes (or machines)
// together produce one load: shard Index of Count takes every browser b with
// b % Count == Index, with all of that browser's streams, so a browser's connection
// pool is never split. Stream indices and session ids stay global.
type Shard struct {
	Index int // 0-based
	Count int // 0 or 1: no sharding
}

// Config is the load shape of one run. The zero value of every field means its
// documented default; Resolved returns the config with the defaults filled in, and
// Validate reports every problem at once.
type Config struct {
	// Target is the base URL of the service under test, e.g. http://127.0.0.1:8080.
	// Required.
	Target string
	// StreamTemplate builds the URL of a stream; {target} is replaced by Target,
	// {session} by the stream's session id (path-escaped) and {stream} by the stream
	// index. Default DefaultStreamTemplate.
	StreamTemplate string
	// ProgressTemplate builds a session's progress-callback URL, with the same
	// placeholders; the runner does not call it, scenarios do (ProgressURL).
	// Default DefaultProgressTemplate.
	ProgressTemplate string
	// Header holds extra headers sent on every stream request (e.g. Authorization).
	Header http.Header
	// Method is the stream requests' method. Default GET.
	Method string
	// Body is the stream requests' body template: {session} is replaced by the
	// stream's session id. A GET has none.
	Body string
	// AcceptEncoding is the stream requests' Accept-Encoding: default
	// DefaultAcceptEncoding (what Chromium's EventSource sends), AcceptIdentity for
	// uncompressed bodies. Responses in gzip, deflate, br or zstd are decoded.
	AcceptEncoding string
	// MaxDecodedRatio is the decompression-bomb limit (decoded bytes per received
	// byte past the first MiB). Default DefaultMaxDecodedRatio.
	MaxDecodedRatio int

	// Streams is the number of simulated EventSources in the whole run (all shards).
	// Default DefaultStreams.
	Streams int
	// Browsers is the number of simulated browsers the streams are spread over; each
	// browser has its own connection pool. Set Browsers or StreamsPerBrowser, not
	// both. Default: Streams / StreamsPerBrowser, rounded up.
	Browsers int
	// StreamsPerBrowser is how many consecutive streams share a browser. Default 1,
	// or Streams / Browsers rounded up when Browsers is set.
	StreamsPerBrowser int
	// MaxConnsPerHost is each browser's HTTP/1.1 connection limit per origin.
	// Default DefaultMaxConnsPerHost (6).
	MaxConnsPerHost int
	// DisableHTTP2 offers only http/1.1 in TLS ALPN.
	DisableHTTP2 bool

	// Ramp is the time over which streams open, evenly spaced; 0 opens all at once.
	Ramp time.Duration
	// Hold is how long the streams stay after the ramp ends. Default DefaultHold.
	Hold time.Duration
	// Drain is the grace period after the hold: streams are asked to close, and those
	// still running after Drain are cancelled. Default DefaultDrain.
	Drain time.Duration

	// ChurnShare is the share (0..1) of streams that leave during the hold (closing
	// their connection) and come back ChurnDelay later, resuming with Last-Event-ID.
	ChurnShare float64
	// ChurnDelay is how long a churning client stays away. Default DefaultChurnDelay.
	ChurnDelay time.Duration

	// SlowShare is the share (0..1) of streams that read at ReadRate.
	SlowShare float64
	// ReadRate is the read rate of slow streams in bytes per second; required when
	// SlowShare > 0.
	ReadRate int64
	// RecvBuffer sets SO_RCVBUF on every new connection, in bytes (0: the system's).
	RecvBuffer int
	// GoroutineReaders reads every stream's body on the stream's own goroutine. By
	// default (false) the bodies of HTTP/1.1 streams (cleartext or TLS) without
	// Content-Encoding are read on a few event loops (one per GOMAXPROCS; Linux
	// only), which costs less memory per stream and less CPU per event and gives the
	// same records; the bodies of HTTP/2 streams without Content-Encoding are then
	// parsed on their connection's reader goroutine. Compressed and slow-reading
	// streams keep their goroutine either way.
	GoroutineReaders bool

	// Retry is the reconnection time until the server sends retry.
	// Default DefaultRetry (3 s).
	Retry time.Duration
	// Jitter lengthens each reconnection delay by a random share of it, up to Jitter
	// (0.2: up to 20% longer). Never shortens it. Default 0.
	Jitter float64
	// NoReconnect makes streams stop after their first connection ends.
	NoReconnect bool
	// MinReconnect is the shortest reconnection delay whatever the server's retry.
	// Default DefaultMinReconnect (100 ms).
	MinReconnect time.Duration
	// MaxBackoff caps the doubling of the reconnection delay while attempts keep
	// ending within QuickEnd of their start. Default DefaultMaxBackoff (30 s).
	MaxBackoff time.Duration

	// Insecure skips TLS certificate verification (self-signed targets).
	Insecure bool
	// DialTimeout bounds TCP connect plus TLS handshake. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers once the request is written.
	// Default DefaultHeaderTimeout.
	HeaderTimeout time.Duration

	// MaxEventSize and MaxLineSize are the parser's limits in bytes (0: 1 MiB).
	MaxEventSize int
	MaxLineSize  int

	// SentField is the JSON path in an event's data of its send time, from which
	// latency is measured: object keys separated by dots ("ts", "meta.sent_at").
	// Default DefaultSentField.
	SentField string
	// SentUnit says how the send time is written (auto, ns, us, ms, s, rfc3339).
	// Default: ns for the default field, auto for any other.
	SentUnit SentUnit
	// MarkPrefix, when set, is a Publisher's Prefix: every stream looks for its marks
	// in the events' data (publish-driven measurement).
	MarkPrefix string
	// SenderField is the JSON field naming the producer of an event.
	// Default DefaultSenderField.
	SenderField string

	// SessionPrefix starts every session id; stream i uses SessionPrefix + i.
	// Default DefaultSessionPrefix.
	SessionPrefix string
	// Sessions, when > 0, makes streams share session ids: stream i uses session
	// i % Sessions. Default 0: one session per stream.
	Sessions int

	// Shard selects this process's share of the run.
	Shard Shard

	// Targets, when it holds more than one base URL, replaces Target per stream: each
	// session is pinned to one of them (PinTarget), so that its reconnections reach
	// the same server. Nil: Target for every stream.
	Targets []string
	// SourceAddrs, when set, binds every connection of the load's browsers to the
	// next of its source addresses (round-robin; share one across the loads of a run
	// for an even spread). Nil: the system picks the source address.
	SourceAddrs *SourceAddrs
	// RootCAs, when set, replaces the system roots for TLS targets (tests).
	RootCAs *x509.CertPool
}

// Validate reports every problem with c (after defaults) at once, joined with
// errors.Join; nil means Start can start the load.
//
// Long: a flat list of independent checks, one per field in field order.
func (c Config) Validate() error {
	r := c.Resolved()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := urlProblem("target", "base URL such as http://127.0.0.1:8080", c.Target, c.Target); err != nil {
		errs = append(errs, err)
	}
	for _, t := range []struct{ name, tmpl string }{{"stream template", r.StreamTemplate}, {"progress template", r.ProgressTemplate}} {
		if c.Target == "" {
			break
		}
		if !absoluteHTTP(expand(t.tmpl, c.Target, "s", 0)) {
			bad("%s %q: does not give an absolute http(s) URL", t.name, t.tmpl)
		}
	}
	if c.Streams < 0 {
		bad("streams: %d is negative", c.Streams)
	}
	if c.Browsers < 0 {
		bad("browsers: %d is negative", c.Browsers)
	}
	if c.StreamsPerBrowser < 0 {
		bad("streams per browser: %d is negative", c.StreamsPerBrowser)
	}
	if c.Browsers > 0 && c.StreamsPerBrowser > 0 && c.Browsers*c.StreamsPerBrowser < r.Streams {
		bad("browsers %d x streams per browser %d = %d cannot hold %d streams (set one of the two)",
			c.Browsers, c.StreamsPerBrowser, c.Browsers*c.StreamsPerBrowser, r.Streams)
	}
	if c.MaxConnsPerHost < 0 {
		bad("max conns per host: %d is negative", c.MaxConnsPerHost)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ramp", c.Ramp}, {"hold", c.Hold}, {"drain", c.Drain}, {"churn delay", c.ChurnDelay},
		{"retry", c.Retry}, {"min reconnect", c.MinReconnect}, {"max backoff", c.MaxBackoff}, {"dial timeout", c.DialTimeout}, {"header timeout", c.HeaderTimeout}} {
		if d.v < 0 {
			bad("%s: %v is negative", d.name, d.v)
		}
	}
	if c.ChurnShare < 0 || c.ChurnShare > 1 || c.ChurnShare != c.ChurnShare {
		bad("churn share: %v is outside 0..1", c.ChurnShare)
	}
	if c.SlowShare < 0 || c.SlowShare > 1 || c.SlowShare != c.SlowShare {
		bad("slow share: %v is outside 0..1", c.SlowShare)
	}
	if c.ReadRate < 0 {
		bad("read rate: %d B/s is negative", c.ReadRate)
	}
	if c.SlowShare > 0 && c.ReadRate <= 0 {
		bad("read rate: slow share %v needs a read rate > 0 B/s", c.SlowShare)
	}
	if c.RecvBuffer < 0 {
		bad("recv buffer: %d is negative", c.RecvBuffer)
	}
	if c.Jitter < 0 || c.Jitter != c.Jitter {
		bad("jitter: %v is negative", c.Jitter)
	}
	if c.MaxEventSize < 0 {
		bad("max event size: %d is negative", c.MaxEventSize)
	}
	if c.MaxLineSize < 0 {
		bad("max line size: %d is negative", c.MaxLineSize)
	}
	errs = append(errs, r.source().requestProblems()...)
	if c.MaxDecodedRatio < 0 {
		bad("max decoded ratio: %d is negative", c.MaxDecodedRatio)
	}
	if c.Sessions < 0 {
		bad("sessions: %d is negative", c.Sessions)
	}
	if c.Shard.Count < 0 {
		bad("shard count: %d is negative", c.Shard.Count)
	}
	if c.Shard.Index < 0 || c.Shard.Index >= r.Shard.Count {
		bad("shard index: %d is outside 0..%d", c.Shard.Index, r.Shard.Count-1)
	}
	for _, t := range c.Targets {
		if !absoluteHTTP(t) {
			bad("target %q: want an absolute http:// or https:// URL", t)
		}
	}
	return errors.Join(errs...)
}

// Session returns the session id of stream i.
func (c Config) Session(i int) string {
	r := c.Resolved()
	if r.Sessions > 0 {
		i %= r.Sessions
	}
	return r.SessionPrefix + strconv.Itoa(i)
}

// StreamURL returns the URL stream i connects to: on Target, or with several Targets
// on the one its session is pinned to.
func (c Config) StreamURL(i int) string {
	r := c.Resolved()
	target := r.Target
	if len(r.Targets) > 1 {
		target = PinTarget(r.Targets, c.Session(i))
	}
	return expand(r.StreamTemplate, target, c.Session(i), i)
}

// ProgressURL returns the progress-callback URL of stream i's session.
func (c Config) ProgressURL(i int) string {
	r := c.Resolved()
	return expand(r.ProgressTemplate, r.Target, c.Session(i), i)
}

// urlProblem judges a required URL setting: name is what messages call it, example
// what to give when it is missing ("" for no hint), raw the value given and filled
// that value with its placeholders filled in.
func urlProblem(name, example, raw, filled string) error {
	switch {
	case raw == "" && example != "":
		return fmt.Errorf("%s: required (%s)", name, example)
	case raw == "":
		return fmt.Errorf("%s: required", name)
	case !absoluteHTTP(filled):
		return fmt.Errorf("%s %q: want an absolute http:// or https:// URL", name, raw)
	}
	return nil
}

// absoluteHTTP reports whether s parses as an absolute http:// or https:// URL.
func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// expand fills a URL template. A trailing slash of the target is dropped so that
// "{target}/x" never produces "//x".
func expand(tmpl, target, session string, stream int) string {
	return strings.NewReplacer(
		"{target}", strings.TrimSuffix(target, "/"),
		"{session}", url.PathEscape(session),
		"{stream}", strconv.Itoa(stream),
	).Replace(tmpl)
}

// validStreamRequest judges a stream request's method (an HTTP token) and body (none
// with GET or HEAD).
func validStreamRequest(method, body string) error {
	if method == "" || strings.IndexFunc(method, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r)
	}) >= 0 {
		return fmt.Errorf("stream method %q: want an HTTP method such as GET or POST", method)
	}
	if body != "" && (method == http.MethodGet || method == http.MethodHead) {
		return fmt.Errorf("stream body given with method %s: a %s request has no body (set a method such as POST)", method, method)
	}
	return nil
}

// QuickEnd is how long an attempt must live for its end not to count as immediate:
// attempts that keep ending sooner back the reconnection delay off.
const QuickEnd = time.Second
