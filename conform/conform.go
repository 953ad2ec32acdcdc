// Package conform checks a live Server-Sent Events endpoint against the WHATWG HTML
// "Server-sent events" section (9.2) and, for cross-origin use, the Fetch standard's CORS
// protocol, one rule at a time.
//
// Run works in two steps. First it observes the target over real HTTP: one long watch
// of the stream (--idle), then short probes that reconnect the way an EventSource would
// (Last-Event-ID, no Accept, an Origin, ...). Then every check, a small pure function
// of those observations, returns a Finding: pass, warn, fail or n/a, what was seen and
// the spec section it enforces. Checks never dial; probes never judge.
package conform

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
)

// Level is how strongly the spec asks for what a check verifies: report's Level, so
// that a finding's level is the result's.
type Level = report.Level

// Levels. Only a failed MUST makes the run fail.
const (
	Must     = report.LevelMust     // clients break without it
	Should   = report.LevelShould   // clients work, but lose data, time or reach
	Advisory = report.LevelAdvisory // deployment advice (proxies, caches, browsers' limits)
)

// Verdict is the outcome of one check.
type Verdict string

// Verdicts.
const (
	Pass Verdict = "pass"
	Warn Verdict = "warn"
	Fail Verdict = "fail"
	NA   Verdict = "n/a" // the target could not show what the check needs; Seen says why
)

// Finding is the result of one check.
type Finding struct {
	ID        int     `json:"id"`        // 1..23: the numbering of issue 6, and 23 of issue 12
	Name      string  `json:"name"`      // short slug, e.g. "keep-alive"
	Level     Level   `json:"level"`     // MUST, SHOULD or ADVISORY
	Verdict   Verdict `json:"verdict"`   // pass, warn, fail or n/a
	Threshold string  `json:"threshold"` // what passes, in a few words
	Seen      string  `json:"seen"`      // what was observed (or why n/a)
	Spec      string  `json:"spec"`      // the section the check enforces
}

// Failed reports whether f is a failed MUST check, the condition for exit code 1.
func (f Finding) Failed() bool { return f.Level == Must && f.Verdict == Fail }

// Defaults for the zero values of Config.
const (
	DefaultIdle    = 20 * time.Second
	DefaultTimeout = 10 * time.Second
	DefaultOrigin  = "http://example.test"
)

// Config says what to check and how patiently. Zero values mean the documented defaults.
type Config struct {
	// Target is the stream URL (http or https). Required.
	Target string
	// ResumeURL is where reconnects go (with Last-Event-ID). Default: Target.
	ResumeURL string
	// StopURL is a stream that is finished or unknown, which must answer 204 (or another
	// non-200). Default: none, and check 12 is n/a.
	StopURL string
	// Origin is the Origin header value for the CORS checks. Nothing is dialed there.
	// Default DefaultOrigin.
	Origin string
	// Idle is how long the stream is watched for keep-alive bytes (check 8); the
	// events it brings are what check 7 judges (without one, 7 is n/a: silence is not
	// buffering). It should exceed the server's keep-alive interval (the spec suggests
	// ~15 s): a whole window without a byte fails check 8. Default 20 s.
	Idle time.Duration
	// Timeout bounds the wait for response headers of every request, and the read of
	// a resumed stream. Default 10 s.
	Timeout time.Duration
	// Insecure skips TLS certificate verification (self-signed test servers).
	Insecure bool
	// Header holds extra request headers sent with every request (e.g. Authorization).
	Header http.Header
	// Method and Body make the stream requests those of an endpoint that answers a
	// request with its stream (POST /v1/chat/completions): every request that an
	// EventSource would send as a GET is sent with Method and Body instead (the CORS
	// preflight asks for Method). Default GET and no body; a body is sent as
	// application/json unless Header sets Content-Type.
	Method string
	Body   string
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Target == "" {
		errs = append(errs, errors.New("target URL is required"))
	} else if err := checkHTTPURL(c.Target); err != nil {
		errs = append(errs, fmt.Errorf("target: %w", err))
	}
	if c.ResumeURL != "" {
		if err := checkHTTPURL(c.ResumeURL); err != nil {
			errs = append(errs, fmt.Errorf("resume URL: %w", err))
		}
	}
	if c.StopURL != "" {
		if err := checkHTTPURL(c.StopURL); err != nil {
			errs = append(errs, fmt.Errorf("stop URL: %w", err))
		}
	}
	if c.Origin != "" {
		if err := checkOrigin(c.Origin); err != nil {
			errs = append(errs, fmt.Errorf("origin: %w", err))
		}
	}
	if c.Idle < 0 {
		errs = append(errs, fmt.Errorf("idle must be > 0 (0 = %v), got %v", DefaultIdle, c.Idle))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must be > 0 (0 = %v), got %v", DefaultTimeout, c.Timeout))
	}
	if c.Method != "" && !validToken(c.Method) {
		errs = append(errs, fmt.Errorf("method %q: not an HTTP method token", c.Method))
	}
	if c.Body != "" && (c.Method == "" || c.Method == http.MethodGet || c.Method == http.MethodHead) {
		errs = append(errs, errors.New("a body needs a method that takes one (e.g. --method POST)"))
	}
	for k := range c.Header {
		if strings.EqualFold(k, "Last-Event-ID") || strings.EqualFold(k, "Origin") || strings.EqualFold(k, "Accept") {
			errs = append(errs, fmt.Errorf("header %s is set by the checks themselves and cannot be overridden", k))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with the defaults applied.
func (c Config) withDefaults() Config {
	c.ResumeURL = cmp.Or(c.ResumeURL, c.Target)
	c.Origin = cmp.Or(c.Origin, DefaultOrigin)
	c.Idle = cmp.Or(c.Idle, DefaultIdle)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.Method = cmp.Or(c.Method, http.MethodGet)
	return c
}

// validToken reports an RFC 9110 token (a method name).
func validToken(m string) bool {
	for i := range len(m) {
		if c := m[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return m != ""
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// checkOrigin accepts a serialized origin: scheme://host[:port], nothing more.
func checkOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin like http://example.test", s)
	}
	if strings.HasSuffix(s, "/") {
		return fmt.Errorf("%q: an origin has no trailing slash", s)
	}
	return nil
}

// Result is one conformance run.
// Its file form is Report's (the configured header values are left out of it).
type Result struct {
	Config   Config // resolved: defaults applied
	Started  time.Time
	Duration time.Duration
	Findings []Finding // in check order, 1..23
}

// Failed reports whether any MUST check failed.
func (r Result) Failed() bool {
	for _, f := range r.Findings {
		if f.Failed() {
			return true
		}
	}
	return false
}

// ErrUnreachable is wrapped by Run's error when no connection to the target could be
// made at all (DNS, refused, TLS handshake): there is nothing to judge.
var ErrUnreachable = errors.New("target unreachable")

// Run checks cfg.Target and returns one finding per check. It takes about cfg.Idle plus
// a few round trips. The error wraps ErrUnreachable when the target could not be
// connected to, and is ctx's error when ctx ended first; a misbehaving target is never
// an error, only findings.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	res := Result{Config: cfg, Started: time.Now()}
	o, err := observe(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.Findings = evaluate(o)
	res.Duration = time.Since(res.Started)
	return res, nil
}
