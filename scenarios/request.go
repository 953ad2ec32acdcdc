package scenarios

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// Defaults of RequestOptions, fit for the reference server's POST /v1/chat/completions.
const (
	DefaultRequestURL     = "{target}/v1/chat/completions"
	DefaultEndData        = "[DONE]"
	DefaultContentPath    = "choices.0.delta.content"
	DefaultUsagePath      = "usage.completion_tokens"
	DefaultGoodputTarget  = 0.9
	defaultRequestRate    = 10
	defaultRequestWindow  = 4 * time.Second
	defaultCapacityWindow = 3 * time.Second
)

// DefaultRequestBody is the request body when none is given: an OpenAI-style streaming
// chat completion of 16 tokens that asks for the usage chunk.
const DefaultRequestBody = `{"model":"sseharness","messages":[{"role":"user","content":"Count to sixteen."}],"stream":true,"max_tokens":16,"stream_options":{"include_usage":true}}`

// DefaultCapacityRates are request-capacity's rate steps when none are given.
func DefaultCapacityRates() []float64 { return []float64{2, 4, 8, 16} }

// The SLO of request-capacity's goodput when --slo leaves a bound out: against an
// external target and against the embedded reference server (whose timers the
// scenarios choose: a 200ms first token, then a token every 10ms), with room for a
// loaded machine: the runner's own delays count in every latency, as they should.
var (
	defaultRequestSLO  = report.RequestSLO{TTFT: 2 * time.Second, ITL: 250 * time.Millisecond, E2E: 30 * time.Second}
	embeddedRequestSLO = report.RequestSLO{TTFT: time.Second, ITL: 250 * time.Millisecond, E2E: 2 * time.Second}
)

// requestServerArgs are the embedded server's timers for the request scenarios.
var requestServerArgs = []string{"--first-token-delay", "200ms", "--token-interval", "10ms"}

// RequestOptions configure the request-stream scenarios (request-stream,
// request-capacity): requests that each get a finite event stream back, sent open-loop
// at a scheduled rate (runner.RunRequests). Zero values mean the defaults given.
type RequestOptions struct {
	// URL is the request URL template: {target} is the target's base URL, {n} the
	// request number, {session} its session id. Default DefaultRequestURL.
	URL string
	// Method is the HTTP method. Default POST.
	Method string
	// Body is the request body template ({n} and {session} filled in); Bodies, when set,
	// are used in turn (or at random with RandomBodies) instead. Default
	// DefaultRequestBody.
	Body         string
	Bodies       []string
	RandomBodies bool
	// EndData and EndEvent name the terminal event (runner.RequestConfig); EndData
	// defaults to DefaultEndData unless EndEvent is set or NoEndData says the end of
	// the body is the end.
	EndData   string
	EndEvent  string
	NoEndData bool
	// ContentPath, ErrorPath and UsagePath are JSON paths into each event's data
	// (runner.RequestConfig). ContentPath defaults to DefaultContentPath, ErrorPath to
	// runner.DefaultErrorPath, UsagePath to DefaultUsagePath.
	ContentPath string
	ErrorPath   string
	UsagePath   string
	// Rates are requests per second: request-stream runs at the first (default 10),
	// request-capacity steps through all (default DefaultCapacityRates).
	Rates []float64
	// Arrival is the arrival process (default constant); Seed makes it reproducible.
	Arrival runner.Arrival
	Seed    uint64
	// MaxConcurrency caps the requests in flight (default runner.DefaultMaxConcurrency).
	MaxConcurrency int
	// Requests and Duration bound each run (each step of request-capacity): the first
	// reached ends it. Default: Duration 4s for request-stream, 3s per step.
	Requests int
	Duration time.Duration
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// SLO is what a request must meet for goodput; a zero bound takes the default
	// (embedded or external). request-stream's ttft-p99, itl-p99 and e2e-p99 checks take
	// their thresholds from `--slo` through Options.Thresholds.
	SLO report.RequestSLO
	// GoodputTarget is the share of requests that must meet the SLO for a
	// request-capacity step to count as sustained. Default DefaultGoodputTarget.
	GoodputTarget float64
}

// Validate reports every problem with o at once, given the scenarios about to run.
func (o RequestOptions) Validate(scs []*Scenario) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, r := range o.Rates {
		if !(r > 0) || math.IsInf(r, 0) {
			bad("rate %v: want requests per second > 0", r)
		}
	}
	for _, s := range scs {
		for _, p := range s.Load {
			if p.Requests != nil && !p.Requests.Sweep && len(o.Rates) > 1 {
				bad("%s runs at one rate, got %d (a sweep is request-capacity)", s.Name, len(o.Rates))
			}
		}
	}
	if o.MaxConcurrency < 0 || o.Requests < 0 || o.Duration < 0 || o.Timeout < 0 {
		bad("max concurrency, requests, duration and timeout must not be negative")
	}
	if o.GoodputTarget < 0 || o.GoodputTarget > 1 {
		bad("goodput target %v: want a share from 0 to 1", o.GoodputTarget)
	}
	if o.EndData != "" && o.EndEvent != "" {
		bad("end data %q and end event %q: set one terminal, not both", o.EndData, o.EndEvent)
	}
	if err := o.SLO.Validate(); err != nil {
		errs = append(errs, err)
	}
	// The rest (paths, method, URL) is the runner's to judge, with a placeholder rate.
	probe := o.config("http://127.0.0.1:1", 1, time.Second)
	if err := probe.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// config is the runner configuration of one run at rate against target.
func (o RequestOptions) config(target string, rate float64, window time.Duration) runner.RequestConfig {
	c := runner.RequestConfig{
		Method: o.Method, URL: o.URL, Body: o.Body, Bodies: o.Bodies, RandomBodies: o.RandomBodies,
		EndData: o.EndData, EndEvent: o.EndEvent, ContentPath: o.ContentPath, ErrorPath: o.ErrorPath,
		UsagePath: o.UsagePath, Rate: rate, Arrival: o.Arrival, Seed: o.Seed,
		MaxConcurrency: o.MaxConcurrency, Requests: o.Requests, Duration: o.Duration, Timeout: o.Timeout,
	}
	if c.URL == "" {
		c.URL = DefaultRequestURL
	}
	c.URL = strings.ReplaceAll(c.URL, "{target}", strings.TrimRight(target, "/"))
	if c.Method == "" {
		c.Method = "POST"
	}
	if c.Body == "" && len(c.Bodies) == 0 {
		c.Body = DefaultRequestBody
	}
	if c.EndData == "" && c.EndEvent == "" && !o.NoEndData {
		c.EndData = DefaultEndData
	}
	if c.ContentPath == "" {
		c.ContentPath = DefaultContentPath
	}
	if c.UsagePath == "" {
		c.UsagePath = DefaultUsagePath
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Requests == 0 && c.Duration == 0 {
		c.Duration = window
	}
	return c
}

// slo is the goodput objective of a run: o.SLO's bounds, the defaults for the rest.
func (o RequestOptions) slo(embedded bool) report.RequestSLO {
	def := defaultRequestSLO
	if embedded {
		def = embeddedRequestSLO
	}
	s := o.SLO
	if s.TTFT == 0 {
		s.TTFT = def.TTFT
	}
	if s.ITL == 0 {
		s.ITL = def.ITL
	}
	if s.E2E == 0 {
		s.E2E = def.E2E
	}
	return s
}

// requestStream: requests at a fixed rate, each answered with a finite event stream
// (an OpenAI-style chat completion); every one must end at its terminal event, without
// an error event, within the latency objectives, and the rate must be achieved. Its
// load is one request phase, whose goodput objective is its own ttft, itl and e2e
// checks' thresholds (with --slo, those); every check is a rule over the request
// metrics.
func requestStream() *Scenario {
	ttft := &CheckSpec{Name: "ttft-p99", Default: defaultRequestSLO.TTFT.String(), Embedded: embeddedRequestSLO.TTFT.String(), Means: "p99 time from the scheduled time to the first content event, at most (--slo ttft=)",
		Rule: requestRule("request_ttft_p99", "<=")}
	itl := &CheckSpec{Name: "itl-p99", Default: defaultRequestSLO.ITL.String(), Embedded: embeddedRequestSLO.ITL.String(), Means: "p99 gap between content events across all requests, at most (--slo itl=)",
		Rule: requestRule("request_itl_p99", "<=")}
	e2e := &CheckSpec{Name: "e2e-p99", Default: defaultRequestSLO.E2E.String(), Embedded: embeddedRequestSLO.E2E.String(), Means: "p99 time from the scheduled time to the terminal event (or other end), at most (--slo e2e=)",
		Rule: requestRule("request_e2e_p99", "<=")}
	return &Scenario{
		Name:    "request-stream",
		Proves:  "requests at a fixed rate each get a finite stream that ends at its terminal event, without error events, within the TTFT, ITL and E2E objectives, at the rate asked",
		Catches: []string{"token-batch=4", "no-done", "stream-error=20", "gen-slots=2", "late-head"},
		Checks: []*CheckSpec{
			{Name: "headers-p50", Default: "1s", Embedded: "100ms", Means: "median time from the scheduled time to the response head, at most (a server that holds every head until its first token fails it)",
				Rule: requestRule("request_headers_p50", "<=")},
			ttft, itl, e2e,
			{Name: "terminated", Default: "0", Means: "requests that did not end at their terminal event (--end-data/--end-event), at most",
				Rule: requestRule("requests_unterminated", "<=")},
			{Name: "no-error-events", Default: "0", Means: "requests ended by an error event (--error-path) inside a 200, at most",
				Rule: requestRule("requests_error_events", "<=")},
			{Name: "tokens-per-event", Default: "1.1", Embedded: "1", Means: "the server's token count (--usage-path) per content event, at most: above 1 the events carry batches of tokens and their gaps are not inter-token latency",
				Rule: requestRule("request_tokens_per_event", "<=")},
			{Name: "achieved-rate", Default: "0.9", Means: "achieved / scheduled request rate, at least",
				Rule: requestRule("request_rate_ratio", ">=")},
		},
		ServerArgs: requestServerArgs,
		Load:       []Phase{{Requests: &RequestLoad{Window: defaultRequestWindow, SLO: &RequestSLOChecks{TTFT: ttft, ITL: itl, E2E: e2e}}}},
	}
}

// requestCapacity: the rate sweep to the goodput knee. Its load is one request phase
// that sweeps the rates, each a group of its own in the result; the sweep stops after
// the first step whose goodput falls below the target, and the knee (the note and the
// headline) is the highest rate up to which every step held it, read from the steps'
// aggregates. sustained-rates is one rule over the steps' groups.
func requestCapacity() *Scenario {
	return &Scenario{
		Name:   "request-capacity",
		Proves: "the highest request rate at which the share of requests meeting every SLO (goodput) stays at or above the target",
		Checks: []*CheckSpec{{Name: "sustained-rates", Default: "1", Means: "rate steps, from the first, whose goodput (share of requests terminated within every SLO) reached the target, at least",
			RateSteps: &RateSteps{Phase: 0}}},
		ServerArgs: requestServerArgs,
		Load:       []Phase{{Requests: &RequestLoad{Window: defaultCapacityWindow, Sweep: true}}},
	}
}

// sweepRates are the rates of a sweep: Rates, or DefaultCapacityRates.
func (o RequestOptions) sweepRates() []float64 {
	if len(o.Rates) == 0 {
		return DefaultCapacityRates()
	}
	return o.Rates
}

// goodputTarget is GoodputTarget, or DefaultGoodputTarget.
func (o RequestOptions) goodputTarget() float64 {
	if o.GoodputTarget == 0 {
		return DefaultGoodputTarget
	}
	return o.GoodputTarget
}
