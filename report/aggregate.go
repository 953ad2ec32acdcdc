package report

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// AggregateConfig sizes an Aggregate. The zero value is valid: every field has a default.
type AggregateConfig struct {
	// ExactSamples is how many samples of each duration are kept exactly; beyond it the
	// samples are dropped and percentiles come from the histogram (1% relative error).
	// 0 means DefaultExactSamples (10,000).
	ExactSamples int
	// TimelineStep is the width of one timeline point. 0 means 1s; at least 1ms.
	TimelineStep time.Duration
	// TimelinePoints caps the timeline: when a run outlasts it, adjacent points are
	// merged and the step doubles, so memory does not grow with the run's length.
	// 0 means 600; at least 2.
	TimelinePoints int
	// Start is the timeline's origin. Zero means the time of the first record.
	Start time.Time
}

func (c AggregateConfig) withDefaults() AggregateConfig {
	if c.ExactSamples == 0 {
		c.ExactSamples = DefaultExactSamples
	}
	if c.TimelineStep == 0 {
		c.TimelineStep = time.Second
	}
	if c.TimelinePoints == 0 {
		c.TimelinePoints = 600
	}
	return c
}

// Validate reports every invalid field at once.
func (c AggregateConfig) Validate() error {
	var errs []error
	if c.ExactSamples < 0 {
		errs = append(errs, fmt.Errorf("exact samples %d is negative", c.ExactSamples))
	}
	if c.TimelineStep != 0 && c.TimelineStep < time.Millisecond {
		errs = append(errs, fmt.Errorf("timeline step %v is below 1ms", c.TimelineStep))
	}
	if c.TimelinePoints != 0 && c.TimelinePoints < 2 {
		errs = append(errs, fmt.Errorf("timeline points %d is below 2", c.TimelinePoints))
	}
	return errors.Join(errs...)
}

// Aggregate folds runner records into the metrics of one scenario run. Its memory is
// fixed: counters, a few small maps keyed by status, protocol, error class and close
// reason, ExactSamples samples per duration at most, histograms whose size depends on
// the value range only, and a timeline capped at TimelinePoints. Nothing is kept per
// stream or per event.
//
// All methods are safe for concurrent use: typically one goroutine calls Add for every
// record while another reads Snapshot for a progress line. Add never blocks on anything
// but the internal mutex.
type Aggregate struct {
	mu  sync.Mutex
	cfg AggregateConfig

	m        Metrics // counters and maps; the DurationStats fields are filled by Metrics()
	open     int64
	statuses map[int]int64

	connect, tls, headers, firstEvent, latency, reconnectDelay, gap, startLag, poolWait *distribution
	// lifetime: attempts that opened, from start to end (Record.Lived); silence: the
	// silences on the wire of open attempts (Record.Quiet).
	lifetime, silence *distribution
	markLatency       *distribution

	timeline timelineBuilder

	req *requestAggregate // request streams (AddRequest); nil until the first
}

// NewAggregate returns an empty aggregate, or the configuration's problems.
func NewAggregate(cfg AggregateConfig) (*Aggregate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aggregate config: %w", err)
	}
	cfg = cfg.withDefaults()
	nd := func() *distribution { return newDistribution(cfg.ExactSamples) }
	a := &Aggregate{
		cfg:      cfg,
		statuses: map[int]int64{},
		connect:  nd(), tls: nd(), headers: nd(), firstEvent: nd(), latency: nd(),
		reconnectDelay: nd(), gap: nd(), startLag: nd(), poolWait: nd(), lifetime: nd(), silence: nd(), markLatency: nd(),
		timeline: timelineBuilder{start: cfg.Start, step: cfg.TimelineStep, max: cfg.TimelinePoints},
	}
	a.m.Errors = map[string]int64{}
	a.m.CloseReasons = map[string]int64{}
	a.m.Protocols = map[string]int64{}
	a.m.NotOpened = map[string]int64{}
	return a, nil
}

// Add folds one record in. Durations the runner marks as not measured (negative) are
// left out of their distribution; TTFirst counts only when positive, since the runner
// sets it on the first event of an attempt alone. Add does not keep r.
func (a *Aggregate) Add(r *runner.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := &a.m
	openBefore := a.open
	m.Records++
	m.Bytes += int64(r.Bytes)
	var opened, events, errs int64
	if r.Quiet > 0 {
		a.silence.add(r.Quiet)
	}
	switch r.Kind {
	case runner.RecordOpened:
		m.Attempts++
		opened = 1
		if r.Attempt == 0 {
			m.Started++
		}
		a.open++
		if a.open > m.PeakOpen {
			m.PeakOpen = a.open
		}
		if !r.Scheduled.IsZero() {
			a.startLag.add(r.Time.Sub(r.Scheduled))
		}
	case runner.RecordHeaders:
		a.addHeaders(r)
	case runner.RecordEvent:
		events = 1
		a.addEvent(r)
	case runner.RecordPublish:
		a.addPublish(r)
	case runner.RecordComment:
		m.Comments++
	case runner.RecordRetry:
		m.RetryFields++
	case runner.RecordClosed:
		if a.open > 0 {
			a.open--
		}
		m.CloseReasons[string(r.Reason)]++
		if r.Lived > 0 {
			// An attempt that opened: how long the stream lived on it, and whether it
			// ended by a network error (cut mid-stream) rather than a clean end.
			a.lifetime.add(r.Lived)
			if r.Reason == runner.CloseNetworkError {
				m.AbruptEnds++
			}
		}
	case runner.RecordReconnect:
		m.Reconnects++
		a.reconnectDelay.add(r.Delay)
		if r.QuickEnds > 0 {
			m.QuickEnds++
		}
	case runner.RecordError:
		errs = 1
		m.Errors[string(r.Class)]++
		if r.BeforeHead {
			m.NotOpened[string(r.Class)]++
		}
	}
	if !r.Time.IsZero() {
		p := a.timeline.at(r.Time, openBefore)
		p.Opened += opened
		p.Events += events
		p.Errors += errs
		p.Open = max(p.Open, a.open)
	}
}

// Metrics returns the metrics so far: a copy, independent of later Adds.
func (a *Aggregate) Metrics() Metrics {
	a.mu.Lock()
	m := a.m
	m.Errors = cloneCounts(a.m.Errors)
	m.CloseReasons = cloneCounts(a.m.CloseReasons)
	m.Protocols = cloneCounts(a.m.Protocols)
	m.NotOpened = cloneCounts(a.m.NotOpened)
	m.Statuses = map[string]int64{}
	for code, n := range a.statuses {
		m.Statuses[strconv.Itoa(code)] = n
	}
	dists := copies(a.distributions())
	req := a.requestParts()
	a.mu.Unlock()
	// Sorting the exact samples (up to DefaultExactSamples for each distribution) is left
	// until the lock is released: Add is not held up by a Metrics call (a scrape).
	for i, d := range durationMetrics() {
		*d.get(&m) = dists[i].summarise()
	}
	m.Requests = req.metrics()
	return m
}

// copies copies each distribution (copy).
func copies(ds []*distribution) []*distribution {
	out := make([]*distribution, len(ds))
	for i, d := range ds {
		out[i] = d.copy()
	}
	return out
}

// distributions are the aggregate's distributions in the order of durationMetrics.
func (a *Aggregate) distributions() []*distribution {
	return []*distribution{a.connect, a.tls, a.headers, a.firstEvent, a.latency, a.reconnectDelay,
		a.gap, a.startLag, a.poolWait, a.lifetime, a.silence, a.markLatency}
}

// Timeline returns a copy of the per-step timeline so far.
func (a *Aggregate) Timeline() Timeline {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.timeline.snapshot()
}

// Snapshot is what a live progress line shows.
type Snapshot struct {
	Elapsed time.Duration // since the timeline's start
	Streams int64         // streams opened so far
	Open    int64         // connections open now
	Events  int64
	// EventRate is events per second over the last complete timeline step (over the
	// elapsed time during the first step).
	EventRate  float64
	LatencyP99 time.Duration // delivery latency p99 so far; valid when LatencyOK
	LatencyOK  bool
	Errors     int64
	// Requests says request-stream records were added (request-stream,
	// request-capacity): the progress line then shows the Req figures, not streams.
	// ReqStarted counts the requests whose response began streaming or that ended;
	// ReqStreaming those of them still streaming; ReqCompleted those that ended at their
	// terminal event, ReqFailed those that ended otherwise (dropped included). Elapsed
	// is from the first request's scheduled time.
	Requests                                          bool
	ReqStarted, ReqStreaming, ReqCompleted, ReqFailed int64
	TTFTP99                                           time.Duration // valid when TTFTOK
	TTFTOK                                            bool
}

// Snapshot returns the figures for a progress line at time now. Its p99 comes from the
// latency histogram (within 1%), a walk over its buckets, never a sort of the samples,
// so that a progress line four times a second holds the lock Add needs only briefly.
func (a *Aggregate) Snapshot(now time.Time) Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Snapshot{Streams: a.m.Streams, Open: a.open, Events: a.m.Events, Errors: a.m.ErrorTotal()}
	if p, ok := a.latency.hist.Percentile(99); ok {
		s.LatencyP99, s.LatencyOK = time.Duration(p), true
	}
	if a.req != nil {
		a.req.snapshot(&s, now)
	}
	tl := &a.timeline
	if !tl.started {
		return s
	}
	s.Elapsed = now.Sub(tl.start)
	k := int(s.Elapsed / tl.step)
	switch {
	case k >= 1 && k-1 < len(tl.points):
		s.EventRate = float64(tl.points[k-1].Events) / tl.step.Seconds()
	case k >= 1:
		s.EventRate = 0 // no record arrived in the last complete step
	case s.Elapsed > 0:
		s.EventRate = float64(a.m.Events) / s.Elapsed.Seconds()
	}
	return s
}

// String formats the snapshot as one progress line.
func (s Snapshot) String() string {
	if s.Requests {
		ttft := "n/a"
		if s.TTFTOK {
			ttft = fmtDuration(s.TTFTP99)
		}
		return fmt.Sprintf("%s  requests %d started (%d streaming)  %d completed  %d failed  ttft p99 %s",
			fmtDuration(s.Elapsed.Truncate(time.Second)), s.ReqStarted, s.ReqStreaming, s.ReqCompleted, s.ReqFailed, ttft)
	}
	p99 := "n/a"
	if s.LatencyOK {
		p99 = fmtDuration(s.LatencyP99)
	}
	return fmt.Sprintf("%s  streams %d (open %d)  events %d (%.0f/s)  p99 latency %s  errors %d",
		fmtDuration(s.Elapsed.Truncate(time.Second)), s.Streams, s.Open, s.Events, s.EventRate, p99, s.Errors)
}

// BatchGap is the gap under which an event counts as batched with the previous one.
const BatchGap = 5 * time.Millisecond

// Metrics are the figures of one scenario run (or of merged shards of one run).
type Metrics struct {
	Records int64 `json:"records"` // records folded in
	// Started counts streams the harness started (first attempts begun); Streams those
	// that opened: a response head with status 200 and an event-stream content type
	// arrived on one of their attempts. A stream that got anything else is not open.
	Started  int64 `json:"started"`
	Streams  int64 `json:"streams"`
	Attempts int64 `json:"attempts"`  // connection attempts, reconnects included
	Heads    int64 `json:"heads"`     // response heads received (any status)
	Opens    int64 `json:"opens"`     // attempts whose response opened the stream
	PeakOpen int64 `json:"peak_open"` // most connections open at once (attempts in flight)
	// NotOpened counts the attempts that did not open, by why: an error class before
	// the head (dial, tls, timeout, read, protocol, head-too-large), "status-NNN" for
	// a head with another status (204 included), "content-type" for a 200 that is not
	// an event stream.
	NotOpened map[string]int64 `json:"not_opened"`
	// FirstOpen and LastOpen are when the first and the last stream opened: the
	// achieved opening rate.
	FirstOpen time.Time `json:"first_open"`
	LastOpen  time.Time `json:"last_open"`
	Events    int64     `json:"events"`
	// StreamsWithEvents counts the streams that got at least one event; BatchedEvents
	// the events that arrived less than BatchGap after the previous one of their stream
	// (a proxy or server that buffers delivers in batches).
	StreamsWithEvents int64 `json:"streams_with_events"`
	BatchedEvents     int64 `json:"batched_events"`
	Comments          int64 `json:"comments"`
	Bytes             int64 `json:"bytes"`
	// RetryFields counts valid retry fields received.
	RetryFields      int64 `json:"retry_fields"`
	Reconnects       int64 `json:"reconnects"`
	MissingIDs       int64 `json:"missing_ids"`       // ids skipped and never delivered (lost)
	DuplicateIDs     int64 `json:"duplicate_ids"`     // ids a stream saw twice
	OutOfOrderIDs    int64 `json:"out_of_order_ids"`  // ids lower than one already seen
	DuplicateSenders int64 `json:"duplicate_senders"` // events from a second sender into one stream
	// AbruptEnds counts attempts that opened the stream and then ended by a network
	// error (a reset, an unexpected EOF, a body cut without its terminator) instead of
	// a clean end of the body or the harness closing it.
	AbruptEnds int64 `json:"abrupt_ends"`

	// Id models and publish-driven marks (issue 11). NumericIDs and OpaqueIDs count
	// the events whose id was a plain number or anything else; IDResets the ids that
	// went back (a per-connection counter, a restarted server) and IDJumps the jumps
	// far past what the target could have produced (JumpedIDs the ids they skipped):
	// neither counts as missing. Published counts the marks the harness published
	// with a 2xx answer, PublishErrors those that failed; MarkEvents the events that
	// carried a mark of this run, MarksLost the marks lost between two a stream
	// received, MarkDuplicates and MarksOutOfOrder the repeated and late ones.
	// QuickEnds counts reconnects after an attempt that ended within a second of
	// its start (runner.QuickEnd).
	NumericIDs      int64 `json:"numeric_ids"`
	OpaqueIDs       int64 `json:"opaque_ids"`
	IDResets        int64 `json:"id_resets"`
	IDJumps         int64 `json:"id_jumps"`
	JumpedIDs       int64 `json:"jumped_ids"`
	Published       int64 `json:"published"`
	PublishErrors   int64 `json:"publish_errors"`
	MarkEvents      int64 `json:"mark_events"`
	MarksLost       int64 `json:"marks_lost"`
	MarkDuplicates  int64 `json:"mark_duplicates"`
	MarksOutOfOrder int64 `json:"marks_out_of_order"`
	QuickEnds       int64 `json:"quick_ends"`

	Errors       map[string]int64 `json:"errors"`        // by runner.ErrorClass
	CloseReasons map[string]int64 `json:"close_reasons"` // by runner.CloseReason
	Statuses     map[string]int64 `json:"statuses"`      // by HTTP status code
	Protocols    map[string]int64 `json:"protocols"`     // by HTTP protocol

	Connect          DurationStats `json:"connect"` // TCP dial, fresh connections only
	TLS              DurationStats `json:"tls"`
	TimeToHeaders    DurationStats `json:"time_to_headers"`
	TimeToFirstEvent DurationStats `json:"time_to_first_event"`
	Latency          DurationStats `json:"delivery_latency"` // server send -> client dispatch
	ReconnectDelay   DurationStats `json:"reconnect_delay"`
	Gap              DurationStats `json:"gap"`       // between consecutive events of a stream
	StartLag         DurationStats `json:"start_lag"` // actual - scheduled start of attempts
	PoolWait         DurationStats `json:"pool_wait"` // waiting for a free browser connection
	Lifetime         DurationStats `json:"lifetime"`  // how long attempts that opened lived, start to end
	// Silence: the silences on the wire of open attempts, from their head or an item
	// (event, comment, retry) to the next item or their end: its max is the longest a
	// path's idle timeout saw the stream quiet.
	Silence DurationStats `json:"silence"`
	// MarkLatency is publish -> delivery of the harness's own marks.
	MarkLatency DurationStats `json:"mark_latency"`

	// Requests are the figures of request streams (AddRequest); nil without any.
	Requests *RequestMetrics `json:"requests,omitempty"`
}

// ErrorTotal is the number of error records of every class.
func (m Metrics) ErrorTotal() int64 {
	var n int64
	for _, c := range m.Errors {
		n += c
	}
	return n
}

func cloneCounts(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Timeline is the run second by second (or per Step): point i covers
// [Start + i·Step, Start + (i+1)·Step).
type Timeline struct {
	Start  time.Time       `json:"start"`
	StepMS int64           `json:"step_ms"`
	Points []TimelinePoint `json:"points"`
}

// Step is the width of one point.
func (t Timeline) Step() time.Duration { return time.Duration(t.StepMS) * time.Millisecond }

// TimelinePoint holds one step of a Timeline.
type TimelinePoint struct {
	Open   int64 `json:"open"`   // most connections open during the step
	Opened int64 `json:"opened"` // connection attempts started
	Events int64 `json:"events"`
	Errors int64 `json:"errors"`
}

// timelineBuilder keeps at most max points, doubling the step when the run outgrows them.
type timelineBuilder struct {
	start   time.Time
	started bool
	step    time.Duration
	max     int
	points  []TimelinePoint
}

// at returns the point covering t, creating the points up to it; new points start with
// the current open count, since connections stay open through steps without records.
func (tb *timelineBuilder) at(t time.Time, open int64) *TimelinePoint {
	if !tb.started {
		if tb.start.IsZero() {
			tb.start = t
		}
		tb.started = true
	}
	k := 0
	if d := t.Sub(tb.start); d > 0 {
		k = int(d / tb.step)
	}
	for k >= tb.max {
		tb.compact()
		k /= 2
	}
	for len(tb.points) <= k {
		tb.points = append(tb.points, TimelinePoint{Open: open})
	}
	return &tb.points[k]
}

// compact merges adjacent points pairwise and doubles the step.
func (tb *timelineBuilder) compact() {
	n := (len(tb.points) + 1) / 2
	for i := 0; i < n; i++ {
		p := tb.points[2*i]
		if 2*i+1 < len(tb.points) {
			q := tb.points[2*i+1]
			p.Open = max(p.Open, q.Open)
			p.Opened += q.Opened
			p.Events += q.Events
			p.Errors += q.Errors
		}
		tb.points[i] = p
	}
	tb.points = tb.points[:n]
	tb.step *= 2
}

func (tb *timelineBuilder) snapshot() Timeline {
	return Timeline{
		Start:  tb.start,
		StepMS: tb.step.Milliseconds(),
		Points: append([]TimelinePoint(nil), tb.points...),
	}
}

// addIDModel folds an event's id model and publish mark in (issue 11).
func (a *Aggregate) addIDModel(r *runner.Record) {
	m := &a.m
	switch {
	case r.Opaque:
		m.OpaqueIDs++
	case r.Seq >= 0:
		m.NumericIDs++
	}
	if r.IDReset {
		m.IDResets++
	}
	if r.IDJump {
		m.IDJumps++
		m.JumpedIDs += r.Jumped
	}
	if r.Mark < 0 {
		return
	}
	m.MarkEvents++
	a.markLatency.add(r.MarkLatency)
	countSequence(&m.MarksLost, &m.MarkDuplicates, &m.MarksOutOfOrder, r.MarkMissing, r.MarkDuplicate, r.MarkOutOfOrder)
}

// countSequence counts one event's place in its stream's sequence (of ids, or of marks):
// missing ones are lost, a duplicate and a late one count, and a late one fills a gap an
// earlier missing count made: it was not lost.
func countSequence(lost, dups, late *int64, missing int64, duplicate, outOfOrder bool) {
	if missing > 0 {
		*lost += missing
	}
	if duplicate {
		*dups++
	}
	if outOfOrder {
		*late++
		if *lost > 0 {
			*lost--
		}
	}
}

// addHeaders folds in a response head; the caller holds a.mu.
func (a *Aggregate) addHeaders(r *runner.Record) {
	m := &a.m
	m.Heads++
	switch {
	case r.Accepted:
		m.Opens++
	case r.Status != 200:
		m.NotOpened["status-"+strconv.Itoa(r.Status)]++
	default:
		m.NotOpened[string(runner.ErrContentType)]++
	}
	// A stream counts as opened only once a response opened it: status 200 with an
	// event-stream content type.
	if r.FirstAccepted {
		m.Streams++
		if m.FirstOpen.IsZero() || r.Time.Before(m.FirstOpen) {
			m.FirstOpen = r.Time
		}
		if r.Time.After(m.LastOpen) {
			m.LastOpen = r.Time
		}
	}
	a.statuses[r.Status]++
	if r.Proto != "" {
		m.Protocols[r.Proto]++
	}
	a.connect.add(r.Dial)
	a.tls.add(r.TLS)
	a.headers.add(r.TTHeaders)
	a.poolWait.add(r.Waited)
}

// addEvent folds in an event: its distributions and its place among the stream's ids;
// the caller holds a.mu.
func (a *Aggregate) addEvent(r *runner.Record) {
	m := &a.m
	m.Events++
	if r.TTFirst > 0 {
		a.firstEvent.add(r.TTFirst)
	}
	a.latency.add(r.Latency)
	a.gap.add(r.Gap)
	switch {
	case r.Gap < 0: // the runner's first event of the stream, any attempt
		m.StreamsWithEvents++
	case r.Gap < BatchGap:
		m.BatchedEvents++
	}
	countSequence(&m.MissingIDs, &m.DuplicateIDs, &m.OutOfOrderIDs, r.Missing, r.Duplicate, r.OutOfOrder)
	if r.DuplicateSender {
		m.DuplicateSenders++
	}
	a.addIDModel(r)
}

// addPublish counts a mark the harness published.
func (a *Aggregate) addPublish(r *runner.Record) {
	if r.Class != "" || r.Status/100 != 2 {
		a.m.PublishErrors++
		return
	}
	a.m.Published++
}
