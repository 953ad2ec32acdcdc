package runner

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Publish-driven measurement: a Publisher sends marked payloads to the target's
// publish endpoint at a steady rate, and every EventSource whose MarkPrefix is the
// publisher's finds the marks in the data of the events it receives. A mark carries
// its sequence number and publish time, so each delivery yields its latency, and the
// marks of one stream are checked for gaps, repeats and order like numeric ids,
// whatever ids the target gives its events.

// Publish defaults.
const (
	DefaultPublishMethod  = http.MethodPost
	DefaultPublishBody    = "{payload}"
	DefaultPublishRate    = 5.0 // marks per second
	DefaultPublishTimeout = 5 * time.Second
)

// PublishConfig describes how to publish to the target. The zero value of a field
// means its default.
type PublishConfig struct {
	// URL is the publish endpoint (http or https); a {payload} in it is replaced by
	// the query-escaped payload. Required.
	URL string
	// Method is the request method. Default DefaultPublishMethod (POST).
	Method string
	// Header holds extra request headers. Without a Content-Type, one is chosen from
	// the body template: application/json for a template starting with { or [,
	// application/x-www-form-urlencoded for one of key=value pairs, else text/plain.
	Header http.Header
	// Body is the body template: {payload} is replaced by the payload, escaped for
	// the body's Content-Type (a JSON string's content inside quotes, a JSON string
	// elsewhere in JSON, query-escaped in a form). Default DefaultPublishBody.
	Body string
	// Rate is how many marks are published per second. Default DefaultPublishRate.
	Rate float64
	// Duration bounds the publishing: no mark is published Duration after Run
	// started. Required (> 0).
	Duration time.Duration
	// Timeout bounds each publish request. Default DefaultPublishTimeout.
	Timeout time.Duration
	// Insecure skips TLS verification; RootCAs replaces the system roots (tests).
	Insecure bool
	RootCAs  *x509.CertPool
}

// Resolved returns c with every zero field set to its default.
func (c PublishConfig) Resolved() PublishConfig {
	c.Method = cmp.Or(c.Method, DefaultPublishMethod)
	c.Body = cmp.Or(c.Body, DefaultPublishBody)
	c.Rate = cmp.Or(c.Rate, DefaultPublishRate)
	c.Timeout = cmp.Or(c.Timeout, DefaultPublishTimeout)
	return c
}

// Validate reports every problem with c at once.
func (c PublishConfig) Validate() error {
	r := c.Resolved()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := urlProblem("publish url", "", c.URL, strings.ReplaceAll(c.URL, "{payload}", "p")); err != nil {
		errs = append(errs, err)
	}
	if !validMethod(r.Method) {
		bad("publish method %q: not an HTTP method token", c.Method)
	}
	if !strings.Contains(r.Body, "{payload}") && !strings.Contains(c.URL, "{payload}") {
		bad("publish body %q: has no {payload} (nor has the URL): the marks would not be sent", c.Body)
	}
	if r.Rate < 0 || r.Rate != r.Rate || r.Rate > 10000 {
		bad("publish rate: %v per second is outside 0..10000", c.Rate)
	}
	if c.Duration <= 0 {
		bad("publish duration: %v, want > 0 (publishing is bounded in time)", c.Duration)
	}
	if c.Timeout < 0 {
		bad("publish timeout: %v is negative", c.Timeout)
	}
	return errors.Join(errs...)
}

// Publisher publishes marked payloads. Create it with NewPublisher, give its Prefix
// to the subscribing sources (SourceConfig.MarkPrefix), then Run it once.
type Publisher struct {
	cfg    PublishConfig
	prefix string
	client *http.Client
	ctype  string
}

// NewPublisher validates cfg and returns a publisher whose marks start with a fresh
// random prefix, so that marks of another run are never mistaken for its own.
func NewPublisher(cfg PublishConfig) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := cfg.Resolved()
	var tok [6]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("mark prefix: %w", err)
	}
	p := &Publisher{cfg: r, prefix: "sseh-" + hex.EncodeToString(tok[:]) + "-"}
	p.ctype = r.Header.Get("Content-Type")
	if p.ctype == "" {
		p.ctype = inferContentType(r.Body)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: r.Insecure, RootCAs: r.RootCAs},
		MaxIdleConnsPerHost: 2,
		ForceAttemptHTTP2:   true,
	}
	p.client = &http.Client{Transport: tr, Timeout: r.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return p, nil
}

// Prefix returns what every mark of this publisher starts with.
func (p *Publisher) Prefix() string { return p.prefix }

// Mark returns the payload of mark seq published at t: the prefix, the sequence
// number and the publish time in unix ns, in characters that need no escaping in
// JSON, forms or URLs (so a hub that re-encodes the payload keeps it findable).
func (p *Publisher) Mark(seq int64, t time.Time) string {
	return p.prefix + strconv.FormatInt(seq, 10) + "-" + strconv.FormatInt(t.UnixNano(), 10)
}

// Run publishes marks 0, 1, 2, ... at the configured rate (mark k is due k/Rate
// after Run starts) until Duration has passed or ctx ends, one request at a time: a
// slow endpoint makes marks late, which their Publish records show (Time against
// Scheduled). Every mark yields one RecordPublish put into out (nil: none) before Run
// returns the number of marks sent.
func (p *Publisher) Run(ctx context.Context, out Sink) int64 {
	defer p.client.CloseIdleConnections()
	start := time.Now()
	end := start.Add(p.cfg.Duration)
	interval := time.Duration(float64(time.Second) / p.cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var seq int64
	for ; ; seq++ {
		due := start.Add(time.Duration(seq) * interval)
		if !due.Before(end) {
			break
		}
		if !waitUntil(ctx, timer, due) || ctx.Err() != nil {
			return seq
		}
		r := p.publish(ctx, seq, due)
		if out != nil {
			out.Put(&r)
		}
	}
	return seq
}

// publish sends one mark and describes it as a RecordPublish.
func (p *Publisher) publish(ctx context.Context, seq int64, due time.Time) Record {
	now := time.Now()
	rec := Record{Kind: RecordPublish, Stream: -1, Browser: -1, Time: now, Scheduled: due,
		Mark: seq, TTHeaders: -1, Latency: -1}
	mark := p.Mark(seq, now)
	u := strings.ReplaceAll(p.cfg.URL, "{payload}", url.QueryEscape(mark))
	req, err := http.NewRequestWithContext(ctx, p.cfg.Method, u, strings.NewReader(ExpandBody(p.cfg.Body, p.ctype, mark)))
	if err != nil {
		rec.Class, rec.Err = ErrProtocol, err.Error()
		return rec
	}
	for k, vs := range p.cfg.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", p.ctype)
	resp, err := p.client.Do(req)
	if err != nil {
		rec.Class, rec.Err = errorClass(err, ErrDial), err.Error()
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			rec.Class = ErrTimeout
		}
		return rec
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	rec.Status = resp.StatusCode
	rec.TTHeaders = time.Since(now)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		rec.Class, rec.Err = ErrStatus, fmt.Sprintf("publish: status %d", resp.StatusCode)
	}
	return rec
}

// inferContentType chooses a Content-Type for a body template without one.
func inferContentType(tmpl string) string {
	t := strings.TrimSpace(tmpl)
	switch {
	case strings.HasPrefix(t, "{") && t != "{payload}" || strings.HasPrefix(t, "["):
		return "application/json"
	case strings.Contains(t, "=") && !strings.ContainsAny(t, " \t\r\n"):
		return "application/x-www-form-urlencoded"
	}
	return "text/plain; charset=utf-8"
}

// ExpandBody fills a publish body template: every {payload} is replaced by payload,
// escaped for contentType. In JSON (application/json, */*+json) a {payload} inside a
// string gets the string's escaping and one elsewhere becomes a JSON string; in a
// form (application/x-www-form-urlencoded) it is query-escaped; anything else takes
// it as it is.
func ExpandBody(tmpl, contentType, payload string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		quoted, _ := json.Marshal(payload)
		inner := string(quoted[1 : len(quoted)-1])
		var b strings.Builder
		rest := tmpl
		for {
			i := strings.Index(rest, "{payload}")
			if i < 0 {
				b.WriteString(rest)
				return b.String()
			}
			b.WriteString(rest[:i])
			if inJSONString(tmpl[:len(tmpl)-len(rest)+i]) {
				b.WriteString(inner)
			} else {
				b.Write(quoted)
			}
			rest = rest[i+len("{payload}"):]
		}
	case mt == "application/x-www-form-urlencoded":
		return strings.ReplaceAll(tmpl, "{payload}", url.QueryEscape(payload))
	}
	return strings.ReplaceAll(tmpl, "{payload}", payload)
}

// inJSONString reports whether the end of the JSON text prefix is inside a string.
func inJSONString(prefix string) bool {
	in := false
	for i := 0; i < len(prefix); i++ {
		switch prefix[i] {
		case '\\':
			if in {
				i++
			}
		case '"':
			in = !in
		}
	}
	return in
}

// findMark returns the sequence number and publish time (unix ns) of the first mark
// with prefix in data.
func findMark(data, prefix string) (seq, sentNs int64, ok bool) {
	for off := 0; ; {
		i := strings.Index(data[off:], prefix)
		if i < 0 {
			return 0, 0, false
		}
		rest := data[off+i+len(prefix):]
		seqEnd := digits(rest)
		if seqEnd > 0 && seqEnd < len(rest) && rest[seqEnd] == '-' {
			tEnd := digits(rest[seqEnd+1:])
			if tEnd > 0 {
				s, err1 := strconv.ParseInt(rest[:seqEnd], 10, 64)
				t, err2 := strconv.ParseInt(rest[seqEnd+1:seqEnd+1+tEnd], 10, 64)
				if err1 == nil && err2 == nil {
					return s, t, true
				}
			}
		}
		off += i + len(prefix)
	}
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// observeMark fills an event record's mark fields from its data.
//
//go:noinline
func (es *EventSource) observeMark(r *Record, data string, now time.Time) {
	seq, sent, ok := findMark(data, es.cfg.MarkPrefix)
	if !ok {
		return
	}
	if es.marks == nil {
		es.marks = &seqTracker{}
	}
	r.Mark = seq
	r.MarkLatency = max(time.Duration(now.UnixNano()-sent), 0)
	o := es.marks.observePlain(seq, now.UnixNano())
	r.MarkMissing, r.MarkDuplicate, r.MarkOutOfOrder = o.missing, o.dup, o.outOfOrder
}
