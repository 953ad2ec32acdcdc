package scenarios

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// Harness is what a scenario uses while it runs: it opens simulated EventSources,
// folds their records into the scenario's aggregate (and its groups' and windows'),
// reads the server's metrics and collects the checks. One Harness serves one run of one
// scenario. A declared scenario (declare.go) needs none of it but its hook's few calls;
// the exported API is what a hook, or a scenario that still runs a function of its
// own, may use:
//
//   - load: Session, Open, OpenSessions, StartLoad, AwaitStarted, Finish;
//   - groups and windows: StreamGroup, Window (Open/Close), Join;
//   - probes: Scrape, AwaitMetric, HasCallback, PostProgress;
//   - rules and notes: Judge (a report rule over the aggregates), Note.
//
// Everything else is the interpreter's and the imperative scenarios' (unexported): the
// measures over counts (offenders, count, excess, measured), thresholds (dur, num,
// limitValue, parsed once when the run was configured) and the target's description.
// Every check is a rule that report/ evaluates, so no verdict is decided by hand and a
// merged result is judged again.
type Harness struct {
	sc    *Scenario
	opts  Options
	start time.Time

	coll  *collector // the runner.Sink of every load, source and publisher
	agg   *report.Aggregate
	obsMu sync.Mutex
	obs   []func(*runner.Record)

	groupMu   sync.Mutex
	groups    []*Group       // groups and windows, in declaration order
	streamGrp map[int]*Group // stream index -> its group

	probe    *probe.Probe // nil without a metrics URL
	baseline probe.Sample
	sampler  *probe.Sampler

	mu        sync.Mutex
	finished  bool // Finish ran: no more sources or loads
	loads     []*runner.Load
	sources   []*runner.EventSource
	browsers  []*runner.Browser
	nextBrws  int
	checks    []report.Check
	requested report.RequestedLoad
	notes     []string
	headline  string // Headline: the scenario's own answer, for the compact output
	wg        sync.WaitGroup
	via       map[string]bool // sessions streamed through a proxy, with several targets

	client *http.Client // callbacks and other plain requests

	// Publish-driven measurement (target.go).
	publisher   *runner.Publisher
	markPrefix  string
	stopPublish context.CancelFunc

	// Per session of a declared scenario (bounded by its streams): the session of each
	// stream, and the events its progress callbacks produced.
	sessionOf map[int]string
	produced  map[string]int64
	closers   []func() error
	// skippedGroups are the groups of phases left out (no nginx), and why.
	skippedGroups map[string]string

	measures  []report.Measure
	limits    map[*CheckSpec]limit // every check's threshold, parsed once
	limitsErr error
}

// Run runs one scenario against opts.Target and returns its result. A scenario that
// could not run has verdict "error" and says why.
func Run(ctx context.Context, sc *Scenario, opts Options) report.ScenarioResult {
	h := newHarness(sc, opts)
	err := h.runScenario(ctx)
	if ctx.Err() != nil {
		// Ctrl-C: the streams were closed and drained; what was measured is kept.
		err = fmt.Errorf("interrupted before the scenario finished; the figures cover what ran")
	}
	return h.result(err)
}

func newHarness(sc *Scenario, opts Options) *Harness {
	if opts.RunID == "" {
		opts.RunID = newRunID()
	}
	agg, _ := report.NewAggregate(report.AggregateConfig{Start: time.Now()})
	h := &Harness{
		sc: sc, opts: opts, start: time.Now(),
		agg: agg,
		client: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{InsecureSkipVerify: opts.Insecure}, //nolint:gosec // opt-in --insecure
				MaxIdleConnsPerHost: 16,
			},
		},
	}
	if opts.Live != nil {
		opts.Live(sc.Name, agg)
	}
	h.limits, h.limitsErr = sc.limits(opts)
	if opts.MetricsURL != "" {
		h.probe = &probe.Probe{URL: opts.MetricsURL, Insecure: opts.Insecure, Names: h.probeNames()}
	}
	h.coll = &collector{h: h}
	return h
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Harness) probeNames() []string {
	names := append([]string(nil), h.opts.ProbeNames...)
	for _, n := range []string{h.opts.OpenStreamsMetric, h.opts.SendersMetric, h.opts.DuplicateSendersMetric} {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// collector is the harness's runner.Sink: it folds each record into the aggregates
// and hands it to the scenario's observers on the goroutine that made it (an event
// loop, a connection's reader, a stream's goroutine), one record at a time under mu.
// No goroutine is woken per record: at thousands of streams, handing records over a
// channel to a collecting goroutine cost several microseconds of CPU per event in
// scheduler wake-ups (issue 14). Folding is quick (aggregates, observers doing O(1)
// per record); nothing under mu calls the runner back. After close, records are dropped:
// Finish closes it once every load, source and publisher is done.
type collector struct {
	mu       sync.Mutex
	h        *Harness
	closed   bool
	maxRetry time.Duration // the longest retry field of any stream
}

// Put folds r (runner.Sink).
func (c *collector) Put(r *runner.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if r.Kind == runner.RecordRetry {
		c.maxRetry = max(c.maxRetry, r.Retry)
	}
	c.h.fold(r)
}

func (c *collector) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// longestRetryField is the longest retry field any stream got so far.
func (c *collector) longestRetryField() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxRetry
}

// fold adds r to the aggregate, its stream's group and the open windows, and hands it
// to the observers. Called by the collector, under its lock, on the goroutine that made
// r: an HTTP/2 connection's reader among them, whose stack must stay within 4 KiB
// (runner.Sink), so r stays a pointer down to the aggregates and the observers.
func (h *Harness) fold(r *runner.Record) {
	h.agg.Add(r)
	h.groupMu.Lock()
	if g := h.streamGrp[r.Stream]; g != nil {
		g.agg.Add(r)
	}
	for _, w := range h.groups {
		if w.window && w.covers(r.Time) {
			w.agg.Add(r)
		}
	}
	h.groupMu.Unlock()
	h.handOut(r)
}

// handOut hands r to the scenario's observers, which must not keep it, and a copy to
// the run's (Options.Observe).
func (h *Harness) handOut(r *runner.Record) {
	if h.opts.Observe != nil {
		h.observeRun(r)
	}
	h.obsMu.Lock()
	obs := h.obs
	h.obsMu.Unlock()
	for _, f := range obs {
		f(r)
	}
}

// observeRun is Options.Observe with its copy of r in a frame of its own.
//
//go:noinline
func (h *Harness) observeRun(r *runner.Record) { h.opts.Observe(h.sc.Name, *r) }

// Group is a named part of a scenario: a group of streams (records of the streams
// opened into it) or a window of time (records of every stream while it is open). Each
// has an aggregate of its own, which goes into the result, for rules to read by name.
type Group struct {
	name      string
	requested int
	window    bool
	agg       *report.Aggregate

	mu       sync.Mutex
	from, to time.Time // window: [from, to); zero to while open
}

// Name is the group's name in the result and in rules.
func (g *Group) Name() string { return g.name }

func (g *Group) covers(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.from.IsZero() && !t.Before(g.from) && (g.to.IsZero() || t.Before(g.to))
}

// Open starts the window now: records from now on are folded into it.
func (g *Group) Open() {
	g.mu.Lock()
	g.from, g.to = time.Now(), time.Time{}
	g.mu.Unlock()
}

// Close ends the window now.
func (g *Group) Close() {
	g.mu.Lock()
	g.to = time.Now()
	g.mu.Unlock()
}

func (h *Harness) newGroup(name string, requested int, window bool) *Group {
	agg, _ := report.NewAggregate(report.AggregateConfig{Start: h.start})
	g := &Group{name: name, requested: requested, window: window, agg: agg}
	h.groupMu.Lock()
	h.groups = append(h.groups, g)
	h.groupMu.Unlock()
	return g
}

// StreamGroup declares a group of requested streams; Join puts streams in it.
func (h *Harness) StreamGroup(name string, requested int) *Group {
	return h.newGroup(name, requested, false)
}

// Window declares a window of time over all streams, closed until Open; requested is
// the streams it is about (0: not a stream count).
func (h *Harness) Window(name string, requested int) *Group {
	return h.newGroup(name, requested, true)
}

// Join puts stream index i into group g: its records from now on fold into g too.
func (h *Harness) Join(g *Group, i int) {
	h.groupMu.Lock()
	if h.streamGrp == nil {
		h.streamGrp = map[int]*Group{}
	}
	h.streamGrp[i] = g
	h.groupMu.Unlock()
}

func (h *Harness) groupInputs() []report.GroupInput {
	h.groupMu.Lock()
	defer h.groupMu.Unlock()
	var out []report.GroupInput
	for _, g := range h.groups {
		out = append(out, report.GroupInput{Name: g.name, Requested: g.requested, Aggregate: g.agg})
	}
	return out
}

// observe registers f to see every record, a stream's in order, under the collector's
// lock (on the goroutine that made the record). f must not keep r. State f builds may
// be read by the scenario after Finish.
func (h *Harness) observe(f func(*runner.Record)) {
	h.obsMu.Lock()
	h.obs = append(h.obs, f)
	h.obsMu.Unlock()
}

func (h *Harness) runScenario(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("scenario %s crashed: %v", h.sc.Name, p)
		}
		h.Finish()
	}()
	if h.limitsErr != nil { // Options.Validate rejects bad overrides first; this is the last guard
		return h.limitsErr
	}
	if h.probe != nil {
		h.baseline = h.probe.Scrape(ctx)
		h.sampler = h.probe.Sample(ctx, 500*time.Millisecond)
	}
	stopProgress := h.startProgress(ctx)
	defer stopProgress()
	if why := h.lacking(); why != "" {
		for _, c := range h.sc.Checks {
			h.notApplicable(c, why)
		}
		return nil
	}
	err = h.runDeclared(ctx)
	h.Finish()
	if uerr := h.reachable(); uerr != nil {
		return uerr
	}
	var ns notStartedError
	if errors.As(err, &ns) {
		h.failUnjudged(string(ns))
		return nil
	}
	return err
}

// notStartedError says the scenario's streams never got to where its checks can judge
// them (none opened, or none got its first events) although the target answered: every
// check the scenario has not judged yet fails, saying why.
type notStartedError string

func (e notStartedError) Error() string { return string(e) }

func notStarted(why string) error { return notStartedError(why) }

// failUnjudged fails every declared check that has no finding yet.
func (h *Harness) failUnjudged(why string) {
	h.mu.Lock()
	done := map[string]bool{}
	for _, c := range h.checks {
		done[c.Name] = true
	}
	h.mu.Unlock()
	for _, spec := range h.sc.Checks {
		if !done[spec.Name] {
			h.offenders(spec, 1, 1, why+": the scenario's streams never started")
		}
	}
}

// reachable is an error when the scenario tried streams and the target never answered
// one: no TCP connection, or no response head on any attempt. A target that answered
// with anything (a 204, a 500, a malformed or oversized head) is reachable: what it
// answered is for the checks to judge.
func (h *Harness) reachable() error {
	m := h.agg.Metrics()
	if m.Attempts == 0 || m.Heads > 0 {
		return nil
	}
	answered := m.NotOpened[string(runner.ErrProtocol)] + m.NotOpened[string(runner.ErrHeadTooLarge)]
	if answered > 0 {
		return nil
	}
	var failed int64
	for _, n := range m.NotOpened {
		failed += n
	}
	if dials := m.NotOpened[string(runner.ErrDial)]; dials > 0 && dials == failed {
		return fmt.Errorf("target unreachable: no TCP connection to %s (%d attempts, every dial failed)", h.opts.Target, m.Attempts)
	}
	why := "no error before the streams were stopped"
	if b := breakdownCounts(m.NotOpened); b != "" {
		why = "attempts failed: " + b
	}
	return fmt.Errorf("target unreachable: no response head from %s on any of %d attempts (%s)", h.opts.Target, m.Attempts, why)
}

// breakdownCounts writes counts as "a 3, b 1" in key order.
func breakdownCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func (h *Harness) startProgress(ctx context.Context) func() {
	if h.opts.Progress == nil && h.opts.Snapshot == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				s := h.agg.Snapshot(now)
				if h.opts.Snapshot != nil {
					h.opts.Snapshot(h.sc.Name, s)
				}
				if h.opts.Progress != nil {
					h.opts.Progress(fmt.Sprintf("%s: %s", h.sc.Name, s.String()))
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Finish closes every source the scenario opened, waits for their records, and stops
// the collector. It is idempotent; scenarios call it before reading observer state, and
// open nothing after it.
func (h *Harness) Finish() {
	h.mu.Lock()
	h.finished = true
	srcs := append([]*runner.EventSource(nil), h.sources...)
	h.sources = nil
	brs := h.browsers
	h.browsers = nil
	loads := h.loads
	h.loads = nil
	stopPublish := h.stopPublish
	h.mu.Unlock()
	if stopPublish != nil {
		stopPublish()
	}
	for _, l := range loads {
		l.Stop()
	}
	for _, s := range srcs {
		s.Close()
	}
	h.wg.Wait()
	for _, l := range loads {
		l.Wait()
	}
	for _, b := range brs {
		b.Close()
	}
	h.coll.close()
	h.mu.Lock()
	closers := h.closers
	h.closers = nil
	h.mu.Unlock()
	for _, c := range closers {
		_ = c()
	}
}

// closeAfter makes Finish call c once the streams are closed (a proxy of a phase).
func (h *Harness) closeAfter(c func() error) {
	h.mu.Lock()
	h.closers = append(h.closers, c)
	h.mu.Unlock()
}

func (h *Harness) result(err error) report.ScenarioResult {
	var sp report.ServerProbe
	if h.probe != nil {
		if h.sampler != nil {
			sp.Samples = h.sampler.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		after := h.probe.Scrape(ctx)
		cancel()
		b := h.baseline
		sp.Baseline, sp.AfterDrain = &b, &after
	}
	h.mu.Lock()
	checks := append([]report.Check(nil), h.checks...)
	h.mu.Unlock()
	h.checkOrder(checks)
	desc := h.sc.Proves
	if len(h.notes) > 0 {
		desc += " (" + strings.Join(h.notes, "; ") + ")"
	}
	return report.BuildScenario(report.ScenarioInput{
		Name: h.sc.Name, Description: desc, Headline: h.headline,
		Start: h.start, End: time.Now(),
		Requested: h.requested,
		Aggregate: h.agg,
		Server:    sp,
		Checks:    checks,
		Err:       err,
		Groups:    h.groupInputs(),
		Measures:  h.measures,
	})
}

// Note adds a remark to the scenario's description in the result.
func (h *Harness) Note(format string, args ...any) {
	h.note(format, args...)
}

// setHeadline sets the scenario's own answer in a few words (e.g. a capacity's sustained
// streams), shown beside the figures of the compact output; it is a note too.
func (h *Harness) setHeadline(format string, args ...any) {
	h.mu.Lock()
	h.headline = fmt.Sprintf(format, args...)
	h.mu.Unlock()
}

func (h *Harness) note(format string, args ...any) {
	h.mu.Lock()
	h.notes = append(h.notes, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

// request records the load the scenario asks for; an open rate set before (a ramped
// phase's) is kept.
func (h *Harness) request(streams, browsers int, hold time.Duration, note string) {
	h.requested = report.RequestedLoad{Streams: streams, Browsers: browsers, HoldMS: float64(hold.Milliseconds()), Note: note, OpenRate: h.requested.OpenRate}
}

// streams returns this process's stream count of the scenario: --streams when given,
// else def; with a shard, its share of that (at least one).
func (h *Harness) streams(def int) int {
	n := def
	if h.opts.Streams > 0 {
		n = h.opts.Streams
	}
	return h.share(n)
}

// share is this shard's part of n: shard I of N gets n/N, plus one when I < n%N, so the
// shards' parts add up to n exactly.
func (h *Harness) share(n int) int {
	c := h.opts.Shard.Count
	if c <= 1 {
		return n
	}
	part := n / c
	if h.opts.Shard.Index < n%c {
		part++
	}
	return max(part, 1)
}

// limit returns a check's threshold, parsed when the run was configured: an override
// from the options, else its default (the Embedded one against the embedded server).
func (h *Harness) limit(c *CheckSpec) limit { return h.limits[c] }

// dur is Limit for a duration threshold.
func (h *Harness) dur(c *CheckSpec) time.Duration { return h.limit(c).d }

// num is Limit for a numeric threshold.
func (h *Harness) num(c *CheckSpec) float64 { return h.limit(c).n }

// limitValue is a check's threshold in a rule's unit: milliseconds for a duration, the
// number otherwise.
func (h *Harness) limitValue(c *CheckSpec) float64 {
	l := h.limit(c)
	if l.isDur {
		return float64(l.d) / float64(time.Millisecond)
	}
	return l.n
}

// threshold is how a check's threshold is shown: op, limit and what it means.
func (h *Harness) threshold(c *CheckSpec, op string) string {
	l := h.limit(c)
	thr := l.String()
	if l.isDur && c.Scale > 0 && c.Scale != 1 {
		// The bar the rule applies, beside the threshold it comes from.
		thr = fmt.Sprintf("%v (%.0f%% of %s)", time.Duration(float64(l.d)*c.Scale), 100*c.Scale, thr)
	}
	if op != "" {
		thr = op + " " + thr
	}
	if c.Means != "" {
		thr = fmt.Sprintf("%s (%s)", thr, c.Means)
	}
	return thr
}

// Judge records a check that report/ evaluates by rule r from the scenario's metrics
// and groups: its verdict is re-evaluated exactly when shard results are merged.
// Without any of the evidence r needs, the check is n/a, saying what was missing.
func (h *Harness) Judge(c *CheckSpec, r report.Rule) {
	h.add(c, report.Check{Name: c.Name, Threshold: h.threshold(c, r.Op), Rule: &r})
}

// offenders records a check over a count the scenario measured from its sources: n of
// the of things examined (streams, requests) missed the check's own threshold, which
// the scenario applied while measuring. report/ judges it (it passes when n is 0; with
// nothing examined it is n/a) and, since counts over each shard's own streams add up,
// judges a merged result again exactly.
func (h *Harness) offenders(c *CheckSpec, n, of int, note string) {
	h.judgeMeasure(c, float64(n), of, report.MergeSum, "", 0, note)
}

// count records a check over a count the scenario measured from its sources, judged
// against the check's own threshold (count <= threshold); counts over each shard's own
// streams add up in a merge.
func (h *Harness) count(c *CheckSpec, n, of int, note string) {
	h.judgeMeasure(c, float64(n), of, report.MergeSum, "<=", h.limitValue(c), note)
}

// excess records a check over a figure of the server under test that must not stay
// above its baseline: excess is how far it still was when the check's own threshold
// (a wait) ran out; it passes at 0. Merged shards keep the worst excess.
func (h *Harness) excess(c *CheckSpec, excess float64, note string) {
	h.judgeMeasure(c, max(excess, 0), 1, report.MergeMax, "", 0, note)
}

// measured records a check of a figure of the server under test against the check's
// own threshold (value <= threshold). Merged shards keep the worst figure.
func (h *Harness) measured(c *CheckSpec, value float64, note string) {
	h.judgeMeasure(c, value, 1, report.MergeMax, "<=", h.limitValue(c), note)
}

func (h *Harness) judgeMeasure(c *CheckSpec, value float64, of int, merge report.MeasureMerge, op string, limit float64, note string) {
	h.measure(report.Measure{Name: c.Name, Value: value, Of: int64(of), Merge: merge, Note: note})
	h.add(c, report.Check{Name: c.Name, Threshold: h.threshold(c, op), Rule: &report.Rule{Metric: "measure." + c.Name, Op: "<=", Limit: limit}})
}

func (h *Harness) measure(m report.Measure) {
	h.mu.Lock()
	h.measures = append(h.measures, m)
	h.mu.Unlock()
}

// notApplicable records a check that could not be evaluated, and why.
func (h *Harness) notApplicable(c *CheckSpec, why string) {
	h.add(c, report.Check{Name: c.Name, Verdict: report.VerdictNotApplicable, Threshold: h.threshold(c, ""), Detail: why})
}

// add records a finding of a declared check; one the scenario did not declare fails,
// loudly, instead of crashing the run.
func (h *Harness) add(c *CheckSpec, chk report.Check) {
	if _, ok := h.limits[c]; !ok {
		chk = report.Check{Name: c.Name, Verdict: report.VerdictFail, Detail: "check not declared by scenario " + h.sc.Name}
	}
	h.mu.Lock()
	h.checks = append(h.checks, chk)
	h.mu.Unlock()
}

// Session returns a session id unique to this run, scenario, shard and index.
func (h *Harness) Session(tag string, i int) string {
	if h.opts.Shard.Count > 1 {
		return fmt.Sprintf("%s-%s-k%d-%s%d", h.opts.RunID, h.sc.Name, h.opts.Shard.Index, tag, i)
	}
	return fmt.Sprintf("%s-%s-%s%d", h.opts.RunID, h.sc.Name, tag, i)
}

func (h *Harness) expand(tmpl, base, session string) string {
	if base == h.opts.Target && len(h.opts.Targets) > 1 && !h.isVia(session) {
		base = runner.PinTarget(h.opts.Targets, session)
	}
	s := strings.ReplaceAll(tmpl, "{target}", strings.TrimRight(base, "/"))
	return strings.ReplaceAll(s, "{session}", url.PathEscape(session))
}

// streamURL is a session's stream URL on the target.
func (h *Harness) streamURL(session string) string {
	return h.expand(h.opts.StreamTemplate, h.opts.Target, session)
}

// streamURLVia is a session's stream URL with base in place of the target (a proxy).
// With several targets the proxies forward to the first, so the session's callbacks
// go there too.
func (h *Harness) streamURLVia(base, session string) string {
	if len(h.opts.Targets) > 1 {
		h.mu.Lock()
		if h.via == nil {
			h.via = map[string]bool{}
		}
		h.via[session] = true
		h.mu.Unlock()
	}
	return h.expand(h.opts.StreamTemplate, base, session)
}

// isVia reports whether session's stream goes through a proxy (StreamURLVia).
func (h *Harness) isVia(session string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.via[session]
}

// HasCallback reports whether the target has a progress callback.
func (h *Harness) HasCallback() bool { return h.opts.ProgressTemplate != "" }

// PostProgress calls the session's progress callback as an upstream worker would.
func (h *Harness) PostProgress(ctx context.Context, session string, progress int, message string) error {
	if !h.HasCallback() {
		return errors.New("target has no progress callback")
	}
	body, _ := json.Marshal(map[string]any{"progress": progress, "message": message})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.expand(h.opts.ProgressTemplate, h.opts.Target, session), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.opts.CallbackToken != "" {
		req.Header.Set("Authorization", "Bearer "+h.opts.CallbackToken)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("progress callback: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("progress callback for %s: status %d", session, resp.StatusCode)
	}
	h.mu.Lock()
	if h.produced == nil {
		h.produced = map[string]int64{}
	}
	h.produced[session]++
	h.mu.Unlock()
	return nil
}

// StartLoad starts a load-engine run whose records the harness collects; Finish stops
// it and waits for it.
func (h *Harness) StartLoad(ctx context.Context, cfg runner.Config) (*runner.Load, error) {
	h.describeLoad(&cfg)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		return nil, fmt.Errorf("scenario %s started a load after Finish", h.sc.Name)
	}
	cfg.SourceAddrs, cfg.Targets = h.opts.SourceAddrs, h.opts.Targets
	l, err := runner.Start(ctx, cfg, h.coll)
	if err != nil {
		return nil, err
	}
	h.loads = append(h.loads, l)
	return l, nil
}

// newBrowser returns a simulated browser of the run.
func (h *Harness) newBrowser(disableH2 bool) *runner.Browser {
	h.mu.Lock()
	id := h.nextBrws
	h.nextBrws++
	h.mu.Unlock()
	b := runner.NewBrowser(runner.BrowserConfig{ID: id, Insecure: h.opts.Insecure, DisableHTTP2: disableH2, SourceAddrs: h.opts.SourceAddrs})
	h.mu.Lock()
	h.browsers = append(h.browsers, b)
	h.mu.Unlock()
	return b
}

// Open starts an EventSource of browser b on url, labelled with stream and session;
// tweak adjusts its config. The source runs until it ends or Finish closes it.
func (h *Harness) Open(ctx context.Context, b *runner.Browser, stream int, session, url string, tweak func(*runner.SourceConfig)) (*runner.EventSource, error) {
	cfg := runner.SourceConfig{URL: url, Stream: stream, Session: session, Header: h.opts.Header}
	h.describeSource(&cfg)
	if tweak != nil {
		tweak(&cfg)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		return nil, fmt.Errorf("scenario %s opened a stream after Finish", h.sc.Name)
	}
	es, err := b.NewEventSource(cfg, h.coll)
	if err != nil {
		return nil, err
	}
	h.sources = append(h.sources, es)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		es.Run(ctx)
	}()
	return es, nil
}

// openSession is Open on a fresh browser for the session's stream URL on the target.
func (h *Harness) openSession(ctx context.Context, stream int, session string, tweak func(*runner.SourceConfig)) (*runner.EventSource, error) {
	return h.Open(ctx, h.newBrowser(false), stream, session, h.streamURL(session), tweak)
}

// Scrape reads the server's metrics once; ok is false without a probe or when the
// target did not answer.
func (h *Harness) Scrape(ctx context.Context) (probe.Sample, bool) {
	if h.probe == nil {
		return probe.Sample{}, false
	}
	s := h.probe.Scrape(ctx)
	return s, s.Available()
}

// metric reads one metric now.
func (h *Harness) metric(ctx context.Context, name string) (float64, bool) {
	s, ok := h.Scrape(ctx)
	if !ok || name == "" {
		return 0, false
	}
	return s.Value(name)
}

// AwaitMetric scrapes every 100ms until cond holds for the named metric or within
// passes. It returns how long that took and whether it held; ok is false also when the
// metric is not available.
func (h *Harness) AwaitMetric(ctx context.Context, name string, within time.Duration, cond func(float64) bool) (took time.Duration, held, available bool) {
	if h.probe == nil || name == "" {
		return 0, false, false
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	available = false
	s, held := h.probe.Until(cctx, 100*time.Millisecond, func(s probe.Sample) bool {
		v, ok := s.Value(name)
		if ok {
			available = true
		}
		return ok && cond(v)
	})
	if _, ok := s.Value(name); ok {
		available = true
	}
	return time.Since(start), held, available
}

// WaitAll waits until cond holds for every source or within passes; it returns the
// sources for which it did not hold.
func WaitAll(ctx context.Context, srcs []*runner.EventSource, within time.Duration, cond func(context.Context, *runner.EventSource) error) []*runner.EventSource {
	cctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var mu sync.Mutex
	var failed []*runner.EventSource
	var wg sync.WaitGroup
	for _, s := range srcs {
		// Not errgroup: every source is awaited to the end and each failure kept, where
		// an errgroup would stop at the first error.
		wg.Go(func() {
			if err := cond(cctx, s); err != nil {
				mu.Lock()
				failed = append(failed, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// startTimeout bounds how long a scenario waits for its streams' first events.
const startTimeout = 15 * time.Second

// AwaitStarted waits until every source has n events. It returns the sources that did
// not get there, and an error when none did: the target is unreachable, refuses the
// streams, or sends nothing, and the scenario cannot run.
func (h *Harness) AwaitStarted(ctx context.Context, srcs []*runner.EventSource, n int64) ([]*runner.EventSource, error) {
	failed := WaitAll(ctx, srcs, startTimeout, awaitEvents(n))
	if len(srcs) == 0 || len(failed) < len(srcs) {
		return failed, nil
	}
	if err := h.unreachable(srcs); err != nil {
		return failed, err
	}
	return failed, notStarted(fmt.Sprintf("no stream got %s within %s", plural(int(n), "event", "events"), startTimeout))
}

// OpenSessions opens n sessions' streams (session tag+i, stream index i), each in a
// browser of its own; tweak adjusts every source's config.
func (h *Harness) OpenSessions(ctx context.Context, tag string, n int, tweak func(*runner.SourceConfig)) ([]*runner.EventSource, error) {
	srcs := make([]*runner.EventSource, n)
	for i := range n {
		es, err := h.openSession(ctx, i, h.Session(tag, i), tweak)
		if err != nil {
			return nil, err
		}
		srcs[i] = es
	}
	return srcs, nil
}

// awaitEvents is a WaitAll condition: n events in total.
func awaitEvents(n int64) func(context.Context, *runner.EventSource) error {
	return func(ctx context.Context, s *runner.EventSource) error { return s.WaitEvents(ctx, n) }
}

// awaitDone is a WaitAll condition: the source ended.
func awaitDone(ctx context.Context, s *runner.EventSource) error {
	select {
	case <-s.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sleep waits d or until ctx ends: a deliberate observation window, never a wait for a
// condition (those use Await*).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

// protocols is the response heads of the run so far by HTTP protocol, in words
// ("HTTP/2.0 240"), from the aggregate; "no response head" without one.
func (h *Harness) protocols() string {
	m := h.agg.Metrics().Protocols
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "no response head"
	}
	return strings.Join(parts, ", ")
}
