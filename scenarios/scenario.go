// Package scenarios replays the failure modes of real SSE deployments against a target
// and judges them: each Scenario is a load shape, checks with default thresholds, and
// the capabilities it needs from the target. The runner produces records, report/
// aggregates them, and every check is a report rule over those aggregates (or over a
// measure the harness took), so that a merged result is judged again.
//
// Most scenarios are declarations (declare.go): phases of streams (Phase), checks that
// say how they are judged (CheckSpec.Rule, Settles, Reach, Fetch, Span, Delta, Senders,
// OpenPerSession, Delivery), and at most one hook that drives a step the data cannot
// express and judges nothing. One interpreter (Harness.runDeclared) runs them all; a
// scenario whose phases are stages (Phase.Settles, half-open) runs them one after the
// other.
package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// Scenario is one named failure mode with the checks that decide whether the target
// handles it. A Scenario value is immutable; run it with Run.
type Scenario struct {
	// Name is part of the CLI's interface (`sseharness run NAME`).
	Name string
	// Proves is one line on what a pass proves (`sseharness list`).
	Proves string
	// Catches lists the reference server's fault modes the scenario must fail on.
	Catches []string
	// Checks are the checks the scenario evaluates, with their default thresholds. The
	// run names them by these values (fields of a struct of the scenario's own), never
	// by a string, so a check that is not declared cannot be named.
	Checks []*CheckSpec
	// Needs are what the scenario needs from its target: without one, every check is
	// n/a with the reason (Harness.lacks), never a failure and never a pass.
	Needs []Capability
	// ServerArgs are the flags of the embedded reference server (`sseharness serve`)
	// when the run has no --target: timers short enough for the scenario to finish fast.
	ServerArgs []string
	// Load is the scenario's load shape as data: the phases of streams the harness
	// opens, in order (declare.go).
	Load []Phase
	// hook, when set, is the one step of a declared scenario that its data cannot
	// express (dropping connections mid-stream, a step search, starting nginx): it runs
	// after the phases are open (in a staged scenario after each stage), only drives
	// load, and never judges a check.
	hook func(ctx context.Context, h *Harness, opened Opened) error
	// Hold is how long a declared scenario holds its load after the hook, an
	// observation window (--hold overrides it); 0: no hold.
	Hold time.Duration
	// StreamsEach makes --streams the count of each phase (paths compared side by
	// side) instead of the total.
	StreamsEach bool
	// HoldOf, when set, makes the hold HoldTimes that check's threshold instead (a
	// number of idle timeouts).
	HoldOf    *CheckSpec
	HoldTimes float64
	// HookWindow, when set, names a window of time from the hook's start to the end
	// of the scenario (e.g. the reconnections after a cut), for rules and notes.
	HookWindow string
	// Publish makes a declared scenario publish marked events to a target with a
	// publish endpoint while its phases run, so that its Delivery checks count marks.
	Publish bool
}

// probed is the server metric a Settles or Delta check reads.
func (c *CheckSpec) probed() ServerMetric {
	if c.Settles != nil {
		return c.Settles.Metric
	}
	if c.Delta != nil {
		return c.Delta.Metric
	}
	return 0
}

// CheckSpec declares one check of a scenario and its threshold.
type CheckSpec struct {
	// Name identifies the check in results and in threshold overrides
	// (`--threshold SCENARIO/CHECK=VALUE`).
	Name string
	// Default is the threshold against an external target, as text: a Go duration
	// ("5s"), a number ("0") or a percentage-free ratio ("0.5").
	Default string
	// Embedded, when set, replaces Default against the embedded reference server, whose
	// timers the scenario chose (ServerArgs).
	Embedded string
	// Means says what the check requires, for `list -v` and the docs.
	Means string
	// Rule, when set, is how report/ judges the check from the scenario's aggregates
	// once its load is done; a Limit of AtThreshold stands for the check's threshold
	// (times Scale, when set: 1<<20 for a threshold in MiB of a rule in bytes; 0.95
	// for a bar 5% under a duration threshold, which the threshold text then shows).
	Rule  *report.Rule
	Scale float64
	// RhythmRule, when set, replaces Rule when the run has no latency to judge (no
	// marks published, no event with a send time): a rule over the arrival rhythm.
	RhythmRule *report.Rule
	// Settles, when set, makes the check a probe of a server figure that must come
	// back to its baseline within the threshold after the load.
	Settles *Settle
	// Reach, when set, counts the streams of a phase that did not get somewhere (end,
	// resume) within the threshold after the hook.
	Reach *Reach
	// Fetch, when set, counts the ordinary requests to the origin, made while a phase
	// is awaited, that did not complete within the threshold.
	Fetch *Fetch
	// OpenPerSession counts the sessions with more than one stream open once the
	// phases are awaited and the hook ran (a reload must replace, not add).
	OpenPerSession bool
	// Delta, when set, judges how far a server figure rose under the load.
	Delta *Delta
	// Senders, when set, counts the streams of a phase fed by more than one sender.
	Senders *Senders
	// Steps judges capacity's step windows ("step-K", "up-to-step-K", which its hook
	// opens): the first threshold-many of them each within the SLO
	// (CapacityConfig.SLOP99), without errors, and every stream with events.
	Steps bool
	// Span, when set, counts the streams of a phase that did not get from one mark of
	// their life to the next within the threshold.
	Span *Span
	// Delivery, when set, judges the ids the streams got (lost, repeated, out of
	// order) against the threshold.
	Delivery Delivery
	// RateSteps, when set, judges the rate steps of a request sweep: the first
	// threshold-many each with goodput at or above the target.
	RateSteps *RateSteps
	// Held, when set, counts the streams of the ramped phase by what each got in its
	// hold window (declare_hold.go).
	Held *Held
}

// All returns every scenario, in the order `run` runs them by default.
func All() []*Scenario {
	return []*Scenario{
		sixConnectionLimit(),
		midStreamDisconnect(),
		sameIDReconnect(),
		resume(),
		proxyBuffering(),
		halfOpen(),
		completion(),
		starvation(),
		reconnectStorm(),
		slowConsumer(),
		capacity(),
		hold(),
		quietOpen(),
		h2StreamCap(),
		idleTimeout(),
		requestStream(),
		requestCapacity(),
	}
}

// Select returns the named scenarios in the order given, or all of them for no names.
// An unknown name is an error listing the known ones.
func Select(names []string) ([]*Scenario, error) {
	all := All()
	if len(names) == 0 {
		return all, nil
	}
	byName := make(map[string]*Scenario, len(all))
	known := make([]string, 0, len(all))
	for _, s := range all {
		byName[s.Name] = s
		known = append(known, s.Name)
	}
	var out []*Scenario
	seen := map[string]bool{}
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", n, strings.Join(known, ", "))
		}
		if !seen[n] {
			out = append(out, s)
			seen[n] = true
		}
	}
	return out, nil
}

func (s *Scenario) spec(name string) (*CheckSpec, bool) {
	for _, c := range s.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Validate reports every problem with the declaration at once: a check without a name
// or declared twice, a default threshold that does not parse.
func (s *Scenario) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, c := range s.Checks {
		if c == nil || c.Name == "" {
			errs = append(errs, fmt.Errorf("scenario %s: a check without a name", s.Name))
			continue
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("scenario %s: check %s declared twice", s.Name, c.Name))
		}
		seen[c.Name] = true
		for i, def := range []string{c.Default, c.Embedded} {
			if i == 1 && def == "" {
				continue // no embedded default: Default applies
			}
			if _, err := parseLimit(c.Default, def); err != nil {
				errs = append(errs, fmt.Errorf("scenario %s: check %s: default %q: %v", s.Name, c.Name, def, err))
			}
		}
	}
	errs = append(errs, s.validateDeclaration(seen)...)
	errs = append(errs, s.validateStages()...)
	return errors.Join(errs...)
}

// validateDeclaration reports the problems of a declared scenario: a phase without
// streams or waiting on a check it does not declare, a check that nothing judges (in
// a declaration every check is a rule or a settle: a hook never judges).
func (s *Scenario) validateDeclaration(declared map[string]bool) []error {
	var errs []error
	if len(s.Load) == 0 && s.hook == nil {
		errs = append(errs, fmt.Errorf("scenario %s: no load phase and no hook", s.Name))
	}
	errs = append(errs, s.validateRequests()...)
	for i, p := range s.Load {
		if p.Requests != nil {
			continue // validateRequests
		}
		if r := p.Reopen; r != nil {
			if r.Phase < 0 || r.Phase >= i {
				errs = append(errs, fmt.Errorf("scenario %s: phase %d reopens phase %d, which is not an earlier one", s.Name, i, r.Phase))
			}
		} else if p.Streams <= 0 {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: streams %d, want > 0", s.Name, i, p.Streams))
		}
		if p.Until < UntilOpen || p.Until > Unawaited {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: no milestone to await", s.Name, i))
		}
		if p.Within != nil && (!declared[p.Within.Name] || !slices.Contains(s.Checks, p.Within)) {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d waits on check %s, which it does not declare", s.Name, i, p.Within.Name))
		}
	}
	for _, c := range s.Checks {
		if c == nil {
			continue
		}
		kinds := 0
		for _, set := range []bool{c.Rule != nil, c.Settles != nil, c.Reach != nil, c.Fetch != nil, c.Delivery != 0, c.OpenPerSession, c.Delta != nil, c.Senders != nil, c.Span != nil, c.Steps, c.RateSteps != nil, c.Held != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: want exactly one way to be judged (rule, settle, reach, fetch, delivery, open-per-session, delta, senders, span, steps, rate steps, held)", s.Name, c.Name))
		}
		if c.Fetch != nil && (c.Fetch.Phase < 0 || c.Fetch.Phase >= len(s.Load) || c.Fetch.AfterOpen < 0) {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: fetch in phase %d, which it does not have", s.Name, c.Name, c.Fetch.Phase))
		}
		if c.Span != nil && (c.Span.Phase < 0 || c.Span.Phase >= len(s.Load) || c.Span.To.Hook) {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: span of phase %d, which it does not have, or to the hook", s.Name, c.Name, c.Span.Phase))
		}
		if c.Senders != nil && (c.Senders.Phase < 0 || c.Senders.Phase >= len(s.Load)) {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: senders of phase %d, which it does not have", s.Name, c.Name, c.Senders.Phase))
		}
		if c.Reach != nil && c.Reach.AfterOpening >= len(s.Load) {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: reach after opening phase %d, which it does not have", s.Name, c.Name, c.Reach.AfterOpening))
		}
		if c.Reach != nil && (c.Reach.Phase < 0 || c.Reach.Phase >= len(s.Load)) {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: reach of phase %d, which it does not have", s.Name, c.Name, c.Reach.Phase))
		}
		if c.Settles != nil && (c.Settles.Metric < OpenStreamsMetric || c.Settles.Metric > DuplicateSendersMetric) {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: settles no known server metric", s.Name, c.Name))
		}
	}
	errs = append(errs, s.validateHeld()...)
	return errs
}

// limits parses every check's threshold once, for one run: the override from the
// options, else the default (the Embedded one against the embedded server).
func (s *Scenario) limits(o Options) (map[*CheckSpec]limit, error) {
	out := make(map[*CheckSpec]limit, len(s.Checks))
	var errs []error
	for _, c := range s.Checks {
		def := c.Default
		if o.Embedded && c.Embedded != "" {
			def = c.Embedded
		}
		val := def
		if v, ok := o.Thresholds[s.Name+"/"+c.Name]; ok {
			val = v
		} else if v, ok := o.Thresholds[c.Name]; ok {
			val = v
		}
		l, err := parseLimit(c.Default, val)
		if err != nil {
			errs = append(errs, fmt.Errorf("threshold %s/%s=%s: %v", s.Name, c.Name, val, err))
			continue
		}
		out[c] = l
	}
	return out, errors.Join(errs...)
}

// Options say how the scenarios reach their target and what they may spend.
type Options struct {
	// Target is the base URL of the service, e.g. http://127.0.0.1:8080. Required.
	Target string
	// Embedded says Target is the reference server the run started itself with the
	// scenario's ServerArgs: the Embedded thresholds apply.
	Embedded bool
	// StreamTemplate and ProgressTemplate build a session's stream and progress-callback
	// URLs: {target} is replaced by Target and {session} by the session id. An empty
	// ProgressTemplate means the target has no callback: checks that need one are n/a.
	StreamTemplate   string
	ProgressTemplate string
	// MetricsURL is the target's Prometheus text endpoint; "" disables the probe.
	MetricsURL string
	// OpenStreamsMetric and SendersMetric name the target's gauges of open streams and
	// running senders; DuplicateSendersMetric its counter of second senders.
	OpenStreamsMetric      string
	SendersMetric          string
	DuplicateSendersMetric string
	// ProbeNames are extra metrics read from MetricsURL and kept in the results.
	ProbeNames []string
	// Header is sent with every stream request (authentication).
	Header http.Header
	// CallbackToken, when set, is sent as a Bearer token with progress callbacks.
	CallbackToken string
	// Insecure skips TLS verification. The embedded server's certificate is
	// self-signed, so runs against it set this.
	Insecure bool
	// Streams overrides every scenario's default stream count (0: defaults).
	Streams int
	// Hold overrides the hold of the load-shaped scenarios (0: defaults).
	Hold time.Duration
	// StreamsEach makes --streams the count of each phase (paths compared side by
	// side) instead of the total.
	StreamsEach bool
	// Hold, Capacity, ProxyBuffering and SixConnection are the settings of those
	// scenarios alone.
	HoldConfig           HoldConfig
	CapacityConfig       CapacityConfig
	ProxyBufferingConfig ProxyBufferingConfig
	SixConnectionConfig  SixConnectionConfig
	// Requests configure the request-stream scenarios (request-stream, request-capacity).
	Requests RequestOptions
	// Thresholds override check thresholds: key "scenario/check" or "check" (every
	// scenario with that check).
	Thresholds map[string]string
	// Progress, when set, is called at most 4 times a second with a line describing the
	// running scenario (streams open, events/s, p99 so far, errors).
	Progress func(line string)
	// RunID makes session ids unique across runs against the same server.
	RunID string
	// Shard makes this process run its share of every scenario's streams, with session
	// ids no other shard uses (`run --shard I/N`); `report merge` combines the results.
	Shard runner.Shard

	// TargetDescription: the send-time field, publish endpoint and request details of
	// the target (issue 11).
	TargetDescription
	// SourceAddrs, when set, spreads the streams' connections over these local source
	// addresses (`run --source-addrs`), one round-robin shared by the whole run.
	SourceAddrs *runner.SourceAddrs
	// Snapshot, when set, is called with the same figures as Progress, as numbers (a
	// worker of `run --workers` streams them to its parent).
	Snapshot func(scenario string, s report.Snapshot)
	// Targets, when it holds more than one base URL (`run --target A --target B`), are
	// the servers the sessions are spread over: each session is pinned to one of them
	// by its id (runner.PinTarget), its stream and its callbacks alike. Target is the
	// first, which the probes and the proxies of the proxy scenarios use.
	Targets []string
	// Live, when set, is called once per scenario run with the aggregate its records
	// fold into, before the first record, so that a live exporter (run --metrics-addr)
	// reads the very figures the result is built from. The aggregate is safe for
	// concurrent reads.
	Live func(scenario string, agg *report.Aggregate)
	// Observe, when set, is called with every record of the run (run --trace), a
	// stream's in order, under the harness's collector lock, on the goroutine that made
	// the record (an event loop, an HTTP/2 connection's reader, a stream's goroutine).
	// It must not block for long: that goroutine, and every stream it serves, waits.
	Observe func(scenario string, r runner.Record)
}

// HoldConfig is the hold scenario's own configuration.
type HoldConfig struct {
	// Ramp is the time over which the streams open (0: 1,000 streams per second).
	Ramp time.Duration
}

func (c HoldConfig) validate() error {
	if c.Ramp < 0 {
		return errors.New("ramp must not be negative")
	}
	return nil
}

// CapacityConfig is the capacity scenario's own configuration.
type CapacityConfig struct {
	// SLOP99 is the p99 delivery-latency objective of a step (0: 250ms).
	SLOP99 time.Duration
	// Steps are the stream counts, in order (nil: 100, 200, 400, 800).
	Steps []int
}

func (c CapacityConfig) validate() error {
	var errs []error
	if c.SLOP99 < 0 {
		errs = append(errs, errors.New("slo-p99 must not be negative"))
	}
	for _, n := range c.Steps {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("capacity step %d: must be > 0", n))
		}
	}
	return errors.Join(errs...)
}

// SixConnectionConfig is the six-connection-limit scenario's own configuration.
type SixConnectionConfig struct {
	// OrdinaryURL is the plain request each browser makes to the target's origin while
	// its streams are open (the CLI's default: {target}/healthz).
	OrdinaryURL string
}

// ProxyBufferingConfig is the proxy-buffering scenario's own configuration.
type ProxyBufferingConfig struct {
	// NginxConf, when set, is an nginx configuration the scenario starts a real nginx
	// with (docker/nginx/...conf); NginxPath is the nginx binary ("" looks it up).
	NginxConf []byte
	NginxPath string
}

// Validate reports every problem with o at once, given the scenarios about to run.
func (o Options) Validate(scs []*Scenario) error {
	var errs []error
	if o.Target == "" {
		errs = append(errs, errors.New("no target URL"))
	} else if !strings.HasPrefix(o.Target, "http://") && !strings.HasPrefix(o.Target, "https://") {
		errs = append(errs, fmt.Errorf("target %q: must be an http:// or https:// URL", o.Target))
	}
	if o.StreamTemplate == "" {
		errs = append(errs, errors.New("stream URL template is empty"))
	}
	errs = append(errs, o.TargetDescription.validate())
	if o.ProgressTemplate != "" && !strings.Contains(o.ProgressTemplate, "{session}") {
		errs = append(errs, fmt.Errorf("progress URL template %q must contain {session}", o.ProgressTemplate))
	}
	if o.Streams < 0 {
		errs = append(errs, fmt.Errorf("streams %d: must be >= 0", o.Streams))
	}
	if o.Hold < 0 {
		errs = append(errs, errors.New("hold must not be negative"))
	}
	errs = append(errs, o.HoldConfig.validate(), o.CapacityConfig.validate())
	errs = append(errs, o.Requests.Validate(scs))
	if o.Shard.Count < 0 || o.Shard.Index < 0 || (o.Shard.Count > 0 && o.Shard.Index >= o.Shard.Count) {
		errs = append(errs, fmt.Errorf("shard %d/%d: want I/N with 0 <= I < N", o.Shard.Index, o.Shard.Count))
	}
	for key, val := range o.Thresholds {
		if err := validThreshold(scs, key, val); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validThreshold checks that an override names a check of at least one scenario (of
// all scenarios, so a thresholds file may cover scenarios not run now) and parses like
// its default.
func validThreshold(_ []*Scenario, key, val string) error {
	scName, check, scoped := strings.Cut(key, "/")
	if !scoped {
		check, scName = scName, ""
	}
	found := false
	for _, s := range All() {
		if scName != "" && s.Name != scName {
			continue
		}
		spec, ok := s.spec(check)
		if !ok {
			continue
		}
		found = true
		if _, err := parseLimit(spec.Default, val); err != nil {
			return fmt.Errorf("threshold %s=%s: %v", key, val, err)
		}
	}
	if !found {
		return fmt.Errorf("threshold %q names no known check (see 'sseharness list -v')", key)
	}
	return nil
}

// limit is a parsed threshold: a duration when the default is one, a number otherwise.
type limit struct {
	d     time.Duration
	n     float64
	isDur bool
}

func (l limit) String() string {
	if l.isDur {
		return l.d.String()
	}
	return strconv.FormatFloat(l.n, 'f', -1, 64)
}

// isDuration tells a duration default ("5s") from a number ("0").
func isDuration(def string) bool {
	_, err := time.ParseDuration(def)
	return err == nil && strings.ContainsAny(def, "hmsuµn")
}

func parseLimit(def, val string) (limit, error) {
	if isDuration(def) {
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return limit{}, fmt.Errorf("want a duration such as 5s or 250ms")
		}
		return limit{d: d, isDur: true}, nil
	}
	n, err := strconv.ParseFloat(val, 64)
	if err != nil || n < 0 {
		return limit{}, fmt.Errorf("want a number >= 0")
	}
	return limit{n: n}, nil
}
