package report

import (
	"errors"
	"fmt"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// RequestSLO is what a request stream must meet to count in goodput. A zero field is not
// part of the objective.
type RequestSLO struct {
	// TTFT bounds the time from the request's scheduled time to its first content event.
	TTFT time.Duration `json:"ttft_ns,omitempty"`
	// ITL bounds the request's mean gap between content events, (last content - first
	// content) / (content events - 1), as vLLM's goodput bounds TPOT; the distribution of
	// every gap is RequestMetrics.ContentGap. A request with fewer than two content
	// events meets it.
	ITL time.Duration `json:"itl_ns,omitempty"`
	// E2E bounds the time from the scheduled time to the request's end (RequestRecord.E2E).
	E2E time.Duration `json:"e2e_ns,omitempty"`
}

// Validate reports every negative bound at once.
func (s RequestSLO) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"ttft", s.TTFT}, {"itl", s.ITL}, {"e2e", s.E2E}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("slo %s: %v is negative", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// String is the form `--slo` reads: "ttft=1s,itl=100ms,e2e=10s" ("none" for no bound).
func (s RequestSLO) String() string {
	out := ""
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"ttft", s.TTFT}, {"itl", s.ITL}, {"e2e", s.E2E}} {
		if f.v > 0 {
			if out != "" {
				out += ","
			}
			out += f.name + "=" + f.v.String()
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// meets says whether an ended request meets s: terminated, and within every bound.
func (s RequestSLO) meets(r *runner.RequestRecord) bool {
	if r.End != runner.EndTerminated {
		return false
	}
	if s.TTFT > 0 && (r.TTFT < 0 || r.TTFT > s.TTFT) {
		return false
	}
	if s.ITL > 0 && r.ContentEvents >= 2 && r.TTLast >= r.TTFT && r.TTFT >= 0 {
		if (r.TTLast-r.TTFT)/time.Duration(r.ContentEvents-1) > s.ITL {
			return false
		}
	}
	return s.E2E <= 0 || r.E2E <= s.E2E
}

// RequestMetrics are the figures of a run of request streams (runner.RunRequests): one
// stream per request, each ending at its terminal event. Every field is a count, a sum or
// a histogram-backed distribution, so shards merge exactly. Latencies are measured from
// each request's scheduled time (coordinated omission included); Waited, the time a
// request waited in the client before it was sent, is given apart.
type RequestMetrics struct {
	// SLO is the objective Good counts against; merged results must share it.
	SLO RequestSLO `json:"slo"`
	// Requests counts requests that ended, dropped ones included; Sent those sent.
	Requests int64 `json:"requests"`
	Sent     int64 `json:"sent"`
	// Ends counts requests by runner.EndClass; only "terminated" is a success.
	Ends map[string]int64 `json:"ends"`
	// Good counts the requests that met every SLO (terminated and within each bound):
	// goodput is Good / Requests.
	Good     int64            `json:"good"`
	Statuses map[string]int64 `json:"statuses"`
	// Events, ContentEvents and ContentBytes are totals over every request.
	Events        int64 `json:"events"`
	ContentEvents int64 `json:"content_events"`
	ContentBytes  int64 `json:"content_bytes"`
	BodyBytes     int64 `json:"body_bytes"`
	// UsageRequests are the requests whose stream carried the server's token count
	// (UsagePath); UsageTokens is the sum of those counts and UsageContentEvents the
	// content events of the same requests, so their ratio is tokens per chunk.
	UsageRequests      int64 `json:"usage_requests"`
	UsageTokens        int64 `json:"usage_tokens"`
	UsageContentEvents int64 `json:"usage_content_events"`
	// ScheduledRate and AchievedRate are requests per second as scheduled and as sent
	// (runner.RequestRun); shards' rates add up.
	ScheduledRate float64 `json:"scheduled_rate_per_s"`
	AchievedRate  float64 `json:"achieved_rate_per_s"`

	TimeToHeaders DurationStats `json:"time_to_headers"`     // scheduled -> response head
	TTFT          DurationStats `json:"time_to_first_token"` // scheduled -> first content event
	// ContentGap is the distribution of every gap between consecutive content events of
	// a request, across all requests (inter-token latency when one event is one token;
	// see UsageTokens); EventGap the same over every event.
	ContentGap DurationStats `json:"content_gap"`
	EventGap   DurationStats `json:"event_gap"`
	// E2E is scheduled -> the request's end: its terminal event, error event, end of
	// body, failure or timeout; not its last content event.
	E2E    DurationStats `json:"end_to_end"`
	Waited DurationStats `json:"client_wait"` // scheduled -> sent
	// Per request: events, content bytes, and output rates over the request's service
	// time (sent -> end): tokens per second (requests with a usage count only), content
	// events and content bytes per second. Events are never counted as tokens.
	EventsPerRequest       ValueStats `json:"events_per_request"`
	ContentBytesPerRequest ValueStats `json:"content_bytes_per_request"`
	TokensPerSecond        ValueStats `json:"tokens_per_s"`
	EventsPerSecond        ValueStats `json:"content_events_per_s"`
	BytesPerSecond         ValueStats `json:"content_bytes_per_s"`
}

// ValueStats summarises a distribution of plain values (counts, rates) from its
// histogram: percentiles nearest-rank within HistogramRelativeError; count, min, max
// and mean exact.
type ValueStats struct {
	Count     uint64     `json:"count"`
	Min       float64    `json:"min,omitempty"`
	Mean      float64    `json:"mean,omitempty"`
	P50       float64    `json:"p50,omitempty"`
	P90       float64    `json:"p90,omitempty"`
	P99       float64    `json:"p99,omitempty"`
	Max       float64    `json:"max,omitempty"`
	Histogram *Histogram `json:"histogram,omitempty"`
}

func valueStats(h *Histogram) ValueStats {
	s := ValueStats{Count: h.Count()}
	if s.Count == 0 {
		return s
	}
	s.Histogram = h.Clone()
	s.fill()
	return s
}

func (s *ValueStats) fill() {
	h := s.Histogram
	s.Count, s.Min, s.Max, s.Mean = h.Count(), h.Min(), h.Max(), h.Sum()/float64(h.Count())
	s.P50, _ = h.Percentile(50)
	s.P90, _ = h.Percentile(90)
	s.P99, _ = h.Percentile(99)
}

func (s *ValueStats) merge(o ValueStats) error {
	return mergeSummary(s, o, s.Count, o.Count, s.Histogram, o.Histogram,
		func(v *ValueStats, h *Histogram) { v.Histogram = h }, valueStatsOf)
}

// valueStatsOf summarises a histogram alone (a merge's), which it keeps.
func valueStatsOf(h *Histogram) ValueStats {
	s := ValueStats{Histogram: h}
	s.fill()
	return s
}

// requestAggregate is the request part of an Aggregate, guarded by its mutex.
type requestAggregate struct {
	m                                      RequestMetrics
	headers, ttft, cgap, egap, e2e, wait   *distribution
	events, cbytes, tokRate, evRate, bRate *Histogram
	// For the progress line (Snapshot): requests whose first event arrived and that
	// have not ended, and the earliest scheduled time seen.
	streaming int64
	first     time.Time
}

// snapshot puts the request figures into a progress snapshot; the caller holds a.mu.
// The TTFT p99 is the histogram's (within 1%): no sort of samples under the lock.
func (ra *requestAggregate) snapshot(s *Snapshot, now time.Time) {
	s.Requests = true
	s.ReqStreaming = ra.streaming
	s.ReqCompleted = ra.m.Ends[string(runner.EndTerminated)]
	s.ReqFailed = ra.m.Requests - s.ReqCompleted
	s.ReqStarted = ra.m.Requests + ra.streaming
	if p, ok := ra.ttft.hist.Percentile(99); ok {
		s.TTFTP99, s.TTFTOK = time.Duration(p), true
	}
	if !ra.first.IsZero() && now.After(ra.first) {
		s.Elapsed = now.Sub(ra.first)
	}
}

func newRequestAggregate(exact int, slo RequestSLO) *requestAggregate {
	nd := func() *distribution { return newDistribution(exact) }
	ra := &requestAggregate{
		headers: nd(), ttft: nd(), cgap: nd(), egap: nd(), e2e: nd(), wait: nd(),
		events: NewHistogram(), cbytes: NewHistogram(), tokRate: NewHistogram(), evRate: NewHistogram(), bRate: NewHistogram(),
	}
	ra.m.SLO = slo
	ra.m.Ends = map[string]int64{}
	ra.m.Statuses = map[string]int64{}
	return ra
}

// SetRequestSLO sets the objective that request records are counted against for
// goodput. Call it before the first AddRequest; later it is an error.
func (a *Aggregate) SetRequestSLO(slo RequestSLO) error {
	if err := slo.Validate(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.req != nil {
		return errors.New("aggregate: the request SLO is set before the first request record")
	}
	a.req = newRequestAggregate(a.cfg.ExactSamples, slo)
	return nil
}

func (a *Aggregate) requests() *requestAggregate {
	if a.req == nil {
		a.req = newRequestAggregate(a.cfg.ExactSamples, RequestSLO{})
	}
	return a.req
}

// AddRequest folds one request-stream record in. Durations not measured (negative) are
// left out of their distribution. Nothing is kept per request.
func (a *Aggregate) AddRequest(r runner.RequestRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ra := a.requests()
	m := &ra.m
	if !r.Scheduled.IsZero() && (ra.first.IsZero() || r.Scheduled.Before(ra.first)) {
		ra.first = r.Scheduled
	}
	switch r.Kind {
	case runner.RequestChunk:
		if r.Gap < 0 {
			ra.streaming++ // the request's first event
		}
		m.Events++
		ra.egap.add(r.Gap)
		if r.Content {
			m.ContentEvents++
			m.ContentBytes += int64(r.ContentBytes)
			ra.cgap.add(r.TokenGap)
		}
	case runner.RequestEnd:
		if r.Events > 0 {
			ra.streaming--
		}
		m.Requests++
		m.Ends[string(r.End)]++
		if r.End != runner.EndDropped {
			m.Sent++
		}
		if r.Status != 0 {
			m.Statuses[fmt.Sprint(r.Status)]++
		}
		m.BodyBytes += r.BodyBytes
		if m.SLO.meets(&r) {
			m.Good++
		}
		ra.headers.add(r.TTHeaders)
		ra.ttft.add(r.TTFT)
		ra.e2e.add(r.E2E)
		if r.End != runner.EndDropped {
			ra.wait.add(r.Waited)
			ra.events.Add(float64(r.Events))
			ra.cbytes.Add(float64(r.ContentBytes))
		}
		if r.Usage >= 0 {
			m.UsageRequests++
			m.UsageTokens += r.Usage
			m.UsageContentEvents += int64(r.ContentEvents)
		}
		// Output rates over the service time, for requests that produced content.
		if svc := r.E2E - r.Waited; r.End != runner.EndDropped && svc > 0 && r.ContentEvents > 0 {
			s := svc.Seconds()
			ra.evRate.Add(float64(r.ContentEvents) / s)
			ra.bRate.Add(float64(r.ContentBytes) / s)
			if r.Usage >= 0 {
				ra.tokRate.Add(float64(r.Usage) / s)
			}
		}
	}
}

// AddRequestRun adds a run's scheduled and achieved rates (runner.RequestRun); runs
// folded into one aggregate at once (shards of one schedule) add up.
func (a *Aggregate) AddRequestRun(run runner.RequestRun) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ra := a.requests()
	ra.m.ScheduledRate += run.ScheduledRate
	ra.m.AchievedRate += run.AchievedRate
}

// requestParts is the request part of Metrics copied under the caller's a.mu, to
// summarise after it (metrics); nil when no request record was added.
func (a *Aggregate) requestParts() *requestParts {
	ra := a.req
	if ra == nil {
		return nil
	}
	p := &requestParts{m: ra.m,
		dists: copies([]*distribution{ra.headers, ra.ttft, ra.cgap, ra.egap, ra.e2e, ra.wait}),                             // requestDurations' order
		hists: []*Histogram{ra.events.Clone(), ra.cbytes.Clone(), ra.tokRate.Clone(), ra.evRate.Clone(), ra.bRate.Clone()}, // requestValues' order
	}
	p.m.Ends = cloneCounts(ra.m.Ends)
	p.m.Statuses = cloneCounts(ra.m.Statuses)
	return p
}

// requestParts are a copy of a requestAggregate's figures (requestParts).
type requestParts struct {
	m     RequestMetrics
	dists []*distribution
	hists []*Histogram
}

// metrics summarises the copy; nil for no copy.
func (p *requestParts) metrics() *RequestMetrics {
	if p == nil {
		return nil
	}
	m := p.m
	for i, d := range requestDurations() {
		*d.get(&m) = p.dists[i].summarise()
	}
	for i, v := range requestValues() {
		*v.get(&m) = valueStats(p.hists[i])
	}
	return &m
}

// Goodput is the share of requests that met every SLO; ok is false without requests.
func (m *RequestMetrics) Goodput() (float64, bool) {
	if m == nil || m.Requests == 0 {
		return 0, false
	}
	return float64(m.Good) / float64(m.Requests), true
}

// requestDurations are the request distributions, for metric names request_NAME_p99
// and the request latencies table.
func requestDurations() []statField[RequestMetrics, DurationStats] {
	return []statField[RequestMetrics, DurationStats]{
		{"headers", "time to headers", func(m *RequestMetrics) *DurationStats { return &m.TimeToHeaders }},
		{"ttft", "time to first token (content)", func(m *RequestMetrics) *DurationStats { return &m.TTFT }},
		{"itl", "gap between content events (ITL)", func(m *RequestMetrics) *DurationStats { return &m.ContentGap }},
		{"event_gap", "gap between events", func(m *RequestMetrics) *DurationStats { return &m.EventGap }},
		{"e2e", "end to end (to the terminal event or other end)", func(m *RequestMetrics) *DurationStats { return &m.E2E }},
		{"wait", "client wait (scheduled -> sent)", func(m *RequestMetrics) *DurationStats { return &m.Waited }},
	}
}

// requestValues are the per-request figures, for metric names and the per request table.
func requestValues() []statField[RequestMetrics, ValueStats] {
	return []statField[RequestMetrics, ValueStats]{
		{"events_per_request", "events", func(m *RequestMetrics) *ValueStats { return &m.EventsPerRequest }},
		{"content_bytes_per_request", "content bytes", func(m *RequestMetrics) *ValueStats { return &m.ContentBytesPerRequest }},
		{"tokens_per_s", "tokens/s (server count)", func(m *RequestMetrics) *ValueStats { return &m.TokensPerSecond }},
		{"content_events_per_s", "content events/s", func(m *RequestMetrics) *ValueStats { return &m.EventsPerSecond }},
		{"content_bytes_per_s", "content bytes/s", func(m *RequestMetrics) *ValueStats { return &m.BytesPerSecond }},
	}
}

func cloneRequestMetrics(m *RequestMetrics) *RequestMetrics {
	if m == nil {
		return nil
	}
	c := *m
	c.Ends = cloneCounts(m.Ends)
	c.Statuses = cloneCounts(m.Statuses)
	for _, d := range requestDurations() {
		if ds := d.get(&c); ds.Histogram != nil {
			ds.Histogram = ds.Histogram.Clone()
		}
	}
	for _, v := range requestValues() {
		if vs := v.get(&c); vs.Histogram != nil {
			vs.Histogram = vs.Histogram.Clone()
		}
	}
	return &c
}

// mergeRequests adds o into *dst: counts and rates add, distributions merge through
// their histograms. Parts with different SLOs cannot be merged (goodput would mix).
func mergeRequests(dst **RequestMetrics, o *RequestMetrics) error {
	if o == nil {
		return nil
	}
	if *dst == nil {
		*dst = cloneRequestMetrics(o)
		return nil
	}
	m := *dst
	if m.SLO != o.SLO {
		return fmt.Errorf("requests: the parts judged goodput against different SLOs (%s and %s)", m.SLO, o.SLO)
	}
	m.Requests += o.Requests
	m.Sent += o.Sent
	m.Good += o.Good
	m.Events += o.Events
	m.ContentEvents += o.ContentEvents
	m.ContentBytes += o.ContentBytes
	m.BodyBytes += o.BodyBytes
	m.UsageRequests += o.UsageRequests
	m.UsageTokens += o.UsageTokens
	m.UsageContentEvents += o.UsageContentEvents
	m.ScheduledRate += o.ScheduledRate
	m.AchievedRate += o.AchievedRate
	for _, pair := range []struct{ dst, src *map[string]int64 }{{&m.Ends, &o.Ends}, {&m.Statuses, &o.Statuses}} {
		if *pair.dst == nil {
			*pair.dst = map[string]int64{}
		}
		for k, v := range *pair.src {
			(*pair.dst)[k] += v
		}
	}
	for _, d := range requestDurations() {
		if err := d.get(m).merge(*d.get(o)); err != nil {
			return fmt.Errorf("request %s: %w", d.name, err)
		}
	}
	for _, v := range requestValues() {
		if err := v.get(m).merge(*v.get(o)); err != nil {
			return fmt.Errorf("request %s: %w", v.name, err)
		}
	}
	return nil
}
