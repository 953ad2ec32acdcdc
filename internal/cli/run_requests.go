package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
	"github.com/sseharness/sseharness/scenarios"
)

// requestFlags are run's flags of the request-stream scenarios (request-stream,
// request-capacity) and the request description they share with the target (--method,
// --body).
type requestFlags struct {
	url, method, body, bodyFile, endData, endEvent           *string
	contentPath, errorPath, usagePath, rate, arrival, sloStr *string
	randomBodies                                             *bool
	maxConc, requests                                        *int
	duration, timeout                                        *time.Duration
	goodput                                                  *float64
	seed                                                     *uint64
}

// requestRunConfig is what the request flags resolved to, for the result file.
type requestRunConfig struct {
	URL            string  `json:"url"`
	Method         string  `json:"method"`
	Bodies         int     `json:"bodies"`
	EndData        string  `json:"end_data,omitempty"`
	EndEvent       string  `json:"end_event,omitempty"`
	ContentPath    string  `json:"content_path"`
	ErrorPath      string  `json:"error_path"`
	UsagePath      string  `json:"usage_path,omitempty"`
	Rates          string  `json:"rates,omitempty"`
	Arrival        string  `json:"arrival"`
	Seed           uint64  `json:"seed"`
	MaxConcurrency int     `json:"max_concurrency"`
	Requests       int     `json:"requests,omitempty"`
	Duration       string  `json:"duration,omitempty"`
	SLO            string  `json:"slo,omitempty"`
	GoodputTarget  float64 `json:"goodput_target"`
}

func addRequestFlags(fs *flag.FlagSet) *requestFlags {
	return &requestFlags{
		url:          fs.String("request-url", scenarios.DefaultRequestURL, "request-stream scenarios: URL template of the requests ({target}, {n} the request number, {session})"),
		method:       fs.String("method", "GET", "HTTP method of the requests: of the event streams (default GET; POST for a target whose streams are asked for with a body) and of the request-stream scenarios (POST unless --method is given)"),
		body:         fs.String("body", "", "request body template, {session} filled in ({n} too in the request-stream scenarios, which default to a 16-token streaming chat completion); sent with every event-stream attempt, reconnects included, when --method is not GET"),
		bodyFile:     fs.String("body-file", "", "request-stream scenarios: file of request bodies, one JSON body per line, used in order (or at random with --random-bodies)"),
		randomBodies: fs.Bool("random-bodies", false, "request-stream scenarios: draw each body from --body-file at random (seeded)"),
		endData:      fs.String("end-data", scenarios.DefaultEndData, "request-stream scenarios: the data of the terminal event (\"\": the end of the body ends a request)"),
		endEvent:     fs.String("end-event", "", "request-stream scenarios: the type of the terminal event instead of --end-data (e.g. message_stop)"),
		contentPath:  fs.String("content-path", scenarios.DefaultContentPath, "request-stream scenarios: JSON path of an event's content; the first event with non-empty content is the first token"),
		errorPath:    fs.String("error-path", runner.DefaultErrorPath, "request-stream scenarios: JSON path whose presence makes an event an error reported inside a 200"),
		usagePath:    fs.String("usage-path", scenarios.DefaultUsagePath, "request-stream scenarios: JSON path of the server's count of generated tokens (tokens/s); \"none\": events and bytes only"),
		rate:         fs.String("rate", "", "request-stream scenarios: requests per second; request-stream takes one (default 10), request-capacity a comma-separated sweep (default 2,4,8,16)"),
		arrival:      fs.String("arrival", "constant", "request-stream scenarios: arrival process, constant, poisson or gamma:SHAPE"),
		seed:         fs.Uint64("seed", 0, "request-stream scenarios: seed of the arrivals and of --random-bodies"),
		maxConc:      fs.Int("max-concurrency", runner.DefaultMaxConcurrency, "request-stream scenarios: requests in flight at most; a request due beyond waits in the client, and the wait counts in its latencies"),
		requests:     fs.Int("requests", 0, "request-stream scenarios: requests per run (per rate step); with --duration, the first bound reached ends it"),
		duration:     fs.Duration("duration", 0, "request-stream scenarios: time over which arrivals are scheduled, per rate step (0 without --requests: 4s for request-stream, 3s per request-capacity step)"),
		timeout:      fs.Duration("request-timeout", 30*time.Second, "request-stream scenarios: bound on each request from when it is sent"),
		sloStr:       fs.String("slo", "", "request-stream scenarios: objectives ttft=D,itl=D,e2e=D: request-stream's ttft-p99, itl-p99 and e2e-p99 thresholds and the SLO of goodput (defaults fit the reference server: ttft=1s,itl=250ms,e2e=2s embedded; ttft=2s,itl=250ms,e2e=30s otherwise)"),
		goodput:      fs.Float64("goodput-target", scenarios.DefaultGoodputTarget, "request-capacity: share of requests that must meet every SLO for a rate step to be sustained"),
	}
}

// options resolves the flags, with every problem at once, and puts --slo's bounds into
// thresholds (request-stream's checks) unless --threshold set them.
func (f *requestFlags) options(fs *flag.FlagSet, thresholds map[string]string, scs []*scenarios.Scenario) (scenarios.RequestOptions, requestRunConfig, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []error
	o := scenarios.RequestOptions{
		URL: *f.url, Body: *f.body, RandomBodies: *f.randomBodies, EndData: *f.endData, EndEvent: *f.endEvent,
		ContentPath: *f.contentPath, ErrorPath: *f.errorPath, UsagePath: *f.usagePath, Seed: *f.seed,
		MaxConcurrency: *f.maxConc, Requests: *f.requests, Duration: *f.duration, Timeout: *f.timeout,
		GoodputTarget: *f.goodput,
	}
	if set["method"] {
		o.Method = *f.method // else the scenarios' POST
	}
	if *f.endEvent != "" && !set["end-data"] {
		o.EndData = ""
	}
	if o.EndData == "" && o.EndEvent == "" {
		o.NoEndData = true
	}
	if *f.usagePath == "none" {
		o.UsagePath = ""
	}
	if *f.maxConc < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrency %d: want at least 1", *f.maxConc))
	}
	if *f.bodyFile != "" {
		if set["body"] {
			errs = append(errs, errors.New("--body and --body-file: give one"))
		}
		bodies, err := loadBodyFile(*f.bodyFile)
		errs = append(errs, err)
		o.Bodies = bodies
	}
	rates, err := parseRates(*f.rate)
	errs = append(errs, err)
	o.Rates = rates
	a, err := runner.ParseArrival(*f.arrival)
	if err != nil {
		errs = append(errs, fmt.Errorf("--arrival: %v", err))
	}
	o.Arrival = a
	slo, err := parseSLO(*f.sloStr)
	if err != nil {
		errs = append(errs, fmt.Errorf("--slo: %v", err))
	}
	o.SLO = slo
	for _, b := range []struct {
		check string
		v     time.Duration
	}{{"ttft-p99", slo.TTFT}, {"itl-p99", slo.ITL}, {"e2e-p99", slo.E2E}} {
		key := "request-stream/" + b.check
		if _, given := thresholds[key]; b.v > 0 && !given {
			thresholds[key] = b.v.String()
		}
	}
	cfg := requestRunConfig{
		URL: o.URL, Method: orDefault(o.Method, "POST"), Bodies: max(len(o.Bodies), 1), EndData: o.EndData, EndEvent: o.EndEvent,
		ContentPath: o.ContentPath, ErrorPath: o.ErrorPath, UsagePath: o.UsagePath, Rates: *f.rate,
		Arrival: o.Arrival.String(), Seed: o.Seed, MaxConcurrency: o.MaxConcurrency, Requests: o.Requests,
		SLO: *f.sloStr, GoodputTarget: o.GoodputTarget,
	}
	if o.Duration > 0 {
		cfg.Duration = o.Duration.String()
	}
	errs = append(errs, o.Validate(scs))
	return o, cfg, errors.Join(errs...)
}

// loadBodyFile reads --body-file: one JSON body per line.
func loadBodyFile(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--body-file: %v", err)
	}
	defer fh.Close()
	bodies, err := runner.LoadBodies(fh)
	if err != nil {
		return bodies, fmt.Errorf("--body-file %s: %s", path, oneLine(err))
	}
	return bodies, nil
}

// parseRates reads --rate: requests per second, comma-separated; "" is none.
func parseRates(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var rates []float64
	for _, part := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil {
			return rates, fmt.Errorf("--rate %q: want requests per second, comma-separated (e.g. 1,2,4,8)", s)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// describeStreams puts --method and --body into the description of the target's event
// streams when a scenario that opens them runs (the request-stream scenarios have their
// own defaults): GET unless --method is given, and a body only with another method.
func (f *requestFlags) describeStreams(scs []*scenarios.Scenario, d *scenarios.TargetDescription) error {
	var streams []string
	for _, s := range scs {
		if s.Name != "request-stream" && s.Name != "request-capacity" {
			streams = append(streams, s.Name)
		}
	}
	if len(streams) == 0 {
		return nil
	}
	d.Method, d.Body = strings.ToUpper(*f.method), *f.body
	if d.Body != "" && (d.Method == "GET" || d.Method == "HEAD") {
		return fmt.Errorf("--body: the event streams of %s are asked for with %s, which has no body; give --method POST (or the method the target's streams take)", strings.Join(streams, ", "), d.Method)
	}
	return nil
}

// parseSLO reads "ttft=D,itl=D,e2e=D" (any subset, any order).
func parseSLO(s string) (report.RequestSLO, error) {
	var slo report.RequestSLO
	if s == "" {
		return slo, nil
	}
	var errs []error
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		d, err := time.ParseDuration(v)
		if !ok || err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%q: want NAME=DURATION with a duration > 0, e.g. ttft=500ms", part))
			continue
		}
		switch k {
		case "ttft":
			slo.TTFT = d
		case "itl":
			slo.ITL = d
		case "e2e":
			slo.E2E = d
		default:
			errs = append(errs, fmt.Errorf("%q: unknown objective %q (want ttft, itl or e2e)", part, k))
		}
	}
	return slo, errors.Join(errs...)
}
