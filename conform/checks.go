package conform

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Spec sections the checks cite.
const (
	specInterface  = "WHATWG HTML 9.2.2 The EventSource interface"
	specProcessing = "WHATWG HTML 9.2.3 Processing model"
	specLastID     = "WHATWG HTML 9.2.4 The Last-Event-ID header"
	specParsing    = "WHATWG HTML 9.2.5 Parsing an event stream"
	specInterpret  = "WHATWG HTML 9.2.6 Interpreting an event stream"
	specAuthoring  = "WHATWG HTML 9.2.7 Authoring notes"
	specPush       = "WHATWG HTML 9.2.8 Connectionless push and other features"
	specCORS       = "Fetch standard: CORS protocol (HTTP responses)"
	specPreflight  = "Fetch standard: CORS-preflight request"
	specHTTPCache  = "WHATWG HTML 9.2.2 (cache mode no-store); RFC 9111"
)

// outcome is what a check function decides; the check table adds the metadata.
type outcome struct {
	Verdict Verdict
	Seen    string
}

func pass(format string, a ...any) outcome { return outcome{Pass, fmt.Sprintf(format, a...)} }
func warn(format string, a ...any) outcome { return outcome{Warn, fmt.Sprintf(format, a...)} }
func fail(format string, a ...any) outcome { return outcome{Fail, fmt.Sprintf(format, a...)} }
func na(format string, a ...any) outcome   { return outcome{NA, fmt.Sprintf(format, a...)} }

// check is one rule: its identity, and the function that judges the observations.
type check struct {
	ID        int
	Name      string
	Level     Level
	Threshold string
	Spec      string
	Judge     func(o *observations) outcome
}

// checks returns the checklist of issue 6, in order, and check 23 of issue 12.
func checks() []check {
	return []check{
		{1, "status", Must, "200 after 301/302/303/307/308 redirects with Location", specInterface + "; Fetch: HTTP-redirect fetch", checkStatus},
		{2, "content-type", Must, "MIME essence text/event-stream (warn: charset not utf-8)", specInterface, checkContentType},
		{3, "accept", Should, "stream served with Accept text/event-stream, none and */*", specInterface, checkAccept},
		{4, "utf-8", Must, "valid UTF-8; at most one BOM, only at byte 0", specParsing, checkUTF8},
		{5, "line-grammar", Must, "lines end in CR/LF/CRLF; blank line after every event before the body ends", specParsing, checkGrammar},
		{6, "field-values", Should, "retry only ASCII digits; no NUL in id (warn: event/id without data)", specInterpret, checkFieldValues},
		{7, "incremental-delivery", Must, "bytes flushed as written: no Content-Length, events whole (n/a without an event)", specAuthoring, checkDelivery},
		{8, "keep-alive", Should, "a byte at least every ~15 s (warn > 20 s; fail: a silent --idle window or dropped)", specAuthoring, checkKeepAlive},
		{9, "resume", Must, "Last-Event-ID accepted (200); replay without gap or repeat; an unknown id of the target's shape: live or a marked gap, no error, no silent replay", specLastID + "; " + specProcessing, checkResume},
		{10, "id-reset", Must, "reconnect without Last-Event-ID (after an empty id) accepted", specInterpret + " (id field); " + specLastID, checkIDReset},
		{11, "reconnect-after-close", Should, "clean close, then the reconnect is accepted; bodies do not end at once", specProcessing, checkReconnect},
		{12, "stop-204", Must, "finished/unknown stream answers 204 (or another non-200), never an empty 200", specProcessing, checkStop},
		{13, "error-status", Advisory, "no 5xx/429 (EventSource never retries them; fail: with Retry-After)", specInterface, checkErrorStatus},
		{14, "cors-anonymous", Should, "Access-Control-Allow-Origin * or the origin, one value", specCORS, checkCORSAnonymous},
		{15, "cors-credentials", Should, "exact origin and Access-Control-Allow-Credentials: true", specCORS, checkCORSCredentials},
		{16, "cors-preflight", Should, "OPTIONS 2xx allowing the origin and header last-event-id", specPreflight, checkCORSPreflight},
		{17, "cors-resume", Should, "a reconnect with Origin and Last-Event-ID carries the same CORS headers", specCORS + "; " + specLastID, checkCORSResume},
		{18, "get", Must, "a plain GET (what EventSource sends) yields the stream", specInterface, checkGet},
		{19, "no-cache", Advisory, "Cache-Control no-cache or no-store; never served from a cache", specHTTPCache, checkCache},
		{20, "protocol", Advisory, "HTTP/2 (warn HTTP/1.1: 6 connections per host; fail HTTP/1.0 or a close-delimited body)", specAuthoring, checkProtocol},
		{21, "proxy-buffering", Advisory, "X-Accel-Buffering: no (proxies do not buffer the stream)", specPush + "; " + specAuthoring, checkProxyBuffering},
		{22, "retry-sanity", Advisory, "retry sent, 1000 ms .. 2^31-1 ms (fail: 0)", specInterpret + " (retry field); " + specProcessing, checkRetry},
		{23, "size-limits", Should, "lines and events up to 1 MiB; gzip expanding at most 256:1 (the read stops past either)", specParsing + " (clients buffer a line or event whole)", checkSizeLimits},
	}
}

// evaluate runs every check over the observations.
func evaluate(o *observations) []Finding {
	cs := checks()
	out := make([]Finding, 0, len(cs))
	for _, c := range cs {
		r := c.Judge(o)
		out = append(out, Finding{ID: c.ID, Name: c.Name, Level: c.Level, Verdict: r.Verdict, Threshold: c.Threshold, Seen: r.Seen, Spec: c.Spec})
	}
	return out
}

// mimeEssence returns the lower-cased type/subtype of a Content-Type value, or "".
func mimeEssence(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && err != mime.ErrInvalidMediaParameter {
		return ""
	}
	return mt
}

// statusText renders a status with its reason phrase.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// describeResponse is a short account of an exchange: status and type, or the error.
func describeResponse(e *exchange) string {
	if e == nil {
		return "not sent"
	}
	if !e.gotResponse() {
		return "no response (" + describeErr(e.Err) + ")"
	}
	s := statusText(e.Status)
	if ct := e.Header.Get("Content-Type"); ct != "" && e.Status == http.StatusOK {
		s += ", " + ct
	}
	return s
}

// secs renders a duration in seconds with one decimal.
func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// --- 1, 2, 3: the response -------------------------------------------------------

func checkStatus(o *observations) outcome {
	m := o.main
	if !m.gotResponse() {
		return fail("no response: %s", describeErr(m.Err))
	}
	var chain []string
	for _, h := range m.Hops {
		chain = append(chain, fmt.Sprintf("%d -> %s", h.Status, h.Location))
	}
	via := ""
	if len(chain) > 0 {
		via = " after " + strings.Join(chain, ", ")
	}
	if m.Status >= 300 && m.Status < 400 {
		loc := m.Header.Get("Location")
		if loc == "" {
			return fail("%s without Location%s", statusText(m.Status), via)
		}
		return fail("%s to %s not followed by clients (only 301/302/303/307/308 redirect)%s", statusText(m.Status), loc, via)
	}
	if m.Status != http.StatusOK {
		return fail("%s%s: an EventSource fails the connection for good", statusText(m.Status), via)
	}
	return pass("200 OK%s", via)
}

func checkContentType(o *observations) outcome {
	m := o.main
	if !m.gotResponse() || m.Status != http.StatusOK {
		return na("no 200 response (%s)", describeResponse(m))
	}
	ct := m.Header.Get("Content-Type")
	if ct == "" {
		return fail("no Content-Type: an EventSource fails the connection")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil && err != mime.ErrInvalidMediaParameter {
		return fail("Content-Type %q does not parse (%v)", ct, err)
	}
	if mt != "text/event-stream" {
		return fail("Content-Type %q: essence %s is not text/event-stream", ct, mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return warn("Content-Type %q: clients decode UTF-8 whatever charset says", ct)
	}
	return pass("Content-Type %q", ct)
}

func checkAccept(o *observations) outcome {
	if why := o.unusable(); why != "" {
		return na("%s", why)
	}
	var bad []string
	for _, p := range []struct {
		what string
		e    *exchange
	}{{"without Accept", o.acceptNone}, {"with Accept: */*", o.acceptAny}} {
		if !p.e.isStream() {
			bad = append(bad, p.what+": "+describeResponse(p.e))
		}
	}
	if len(bad) > 0 {
		return fail("%s", strings.Join(bad, "; "))
	}
	return pass("stream served with Accept text/event-stream, without Accept and with */*")
}

// --- 13, 18, 19, 20, 21: HTTP around the stream ---------------------------------

func checkErrorStatus(o *observations) outcome {
	all := o.streams()
	if o.stop != nil {
		all = append(all, o.stop)
	}
	var withRetry, plain []string
	for _, e := range all {
		if !e.gotResponse() || (e.Status != http.StatusTooManyRequests && e.Status < 500) {
			continue
		}
		s := fmt.Sprintf("%s: %s", e.Label, statusText(e.Status))
		if ra := e.Header.Get("Retry-After"); ra != "" {
			withRetry = append(withRetry, s+" with Retry-After "+ra)
		} else {
			plain = append(plain, s)
		}
	}
	if len(withRetry) > 0 {
		return fail("%s: the server expects a retry, but an EventSource treats the status as final", strings.Join(withRetry, "; "))
	}
	if len(plain) > 0 {
		return warn("%s: terminal for browsers (no reconnect)", strings.Join(plain, "; "))
	}
	return pass("no 5xx or 429 among %d responses", len(all))
}

func checkGet(o *observations) outcome {
	m := o.main
	if meth := o.cfg.Method; meth != "" && meth != http.MethodGet {
		// A request-stream endpoint (POST with a body): EventSource is not its client.
		return na("the stream requests were sent with %s (--method): EventSource's GET-only rule is for EventSource endpoints", meth)
	}
	if !m.gotResponse() {
		return fail("GET got no response (%s)", describeErr(m.Err))
	}
	if m.Status == http.StatusMethodNotAllowed {
		return fail("GET refused: 405 (Allow: %q); EventSource only sends GET", m.Header.Get("Allow"))
	}
	if m.Status == http.StatusNotImplemented {
		return fail("GET refused: 501 Not Implemented")
	}
	if !m.isStream() {
		return na("GET was not refused as a method (%s; see checks 1 and 2)", describeResponse(m))
	}
	if o.bare != nil && !o.bare.isStream() {
		return warn("GET without the --header values answered %s: EventSource cannot send custom headers (use cookies or a token in the URL)", describeResponse(o.bare))
	}
	if o.bare != nil {
		return pass("GET yields the stream, also without the --header values")
	}
	return pass("GET yields the stream")
}

func checkCache(o *observations) outcome {
	m := o.main
	if !m.gotResponse() {
		return na("no response (%s)", describeErr(m.Err))
	}
	if age := m.Header.Get("Age"); age != "" {
		return fail("Age: %s: the response came from a cache", age)
	}
	cc := strings.ToLower(strings.Join(m.Header.Values("Cache-Control"), ","))
	var noCache bool
	var maxAge string
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(d)
		name, val, _ := strings.Cut(d, "=")
		switch name {
		case "no-cache", "no-store":
			noCache = true
		case "max-age", "s-maxage":
			if v := strings.Trim(val, `"`); v != "0" && v != "" {
				maxAge = d
			}
		}
	}
	switch {
	case maxAge != "" && !noCache:
		return fail("Cache-Control %q lets caches keep the stream", cc)
	case noCache:
		return pass("Cache-Control %q", cc)
	case cc == "":
		return warn("no Cache-Control: send no-cache (or no-store) so caches do not hold the stream")
	}
	return warn("Cache-Control %q has neither no-cache nor no-store", cc)
}

func checkProtocol(o *observations) outcome {
	m := o.main
	if !m.gotResponse() {
		return na("no response (%s)", describeErr(m.Err))
	}
	switch {
	case m.ProtoMajor >= 2:
		return pass("%s: streams share one connection", m.Proto)
	case m.Proto == "HTTP/1.1" && m.Status == http.StatusOK && m.ContentLength < 0 && len(m.TransferEncoding) == 0:
		return fail("HTTP/1.1 without Content-Length or chunked coding: the body is delimited by the connection's close, so proxies cannot frame it or reuse the connection; send it chunked")
	case m.Proto == "HTTP/1.1":
		return warn("HTTP/1.1: browsers open at most 6 connections per host, so a 7th tab's EventSource waits; serve h2")
	}
	return fail("%s: no chunked transfer, the body ends only at close; proxies and clients cannot keep a stream", m.Proto)
}

func checkProxyBuffering(o *observations) outcome {
	m := o.main
	if !m.gotResponse() {
		return na("no response (%s)", describeErr(m.Err))
	}
	v := strings.TrimSpace(m.Header.Get("X-Accel-Buffering"))
	switch strings.ToLower(v) {
	case "no":
		return pass("X-Accel-Buffering: no")
	case "":
		return warn("no X-Accel-Buffering: no; nginx-style reverse proxies buffer responses by default")
	}
	return fail("X-Accel-Buffering: %s asks proxies to buffer the stream", v)
}
