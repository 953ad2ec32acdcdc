package report

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// unit says how a metric's value is written.
type unit uint8

const (
	unitCount unit = iota
	unitMS
	unitBytes
	unitRatio
)

func (u unit) format(v float64) string {
	switch u {
	case unitMS:
		return fmtMS(v)
	case unitBytes:
		return fmtBytes(v)
	default:
		return fmtNumber(v)
	}
}

// metricDef is one named metric that rules and compare can read from a scenario result.
type metricDef struct {
	name string
	unit unit
	// worse is +1 when a higher value is worse (latency, errors), -1 when a lower one is
	// (streams, events), 0 when neither.
	worse int
	get   func(*ScenarioResult) (float64, bool)
	// explain, when set, adds what lies behind the value to a rule's detail.
	explain func(*ScenarioResult) string
}

// statField is one distribution S of a metrics struct M: name in metric names (NAME_p50
// and so on), label in tables, get to reach it.
type statField[M, S any] struct {
	name, label string
	get         func(*M) *S
}

// durationMetrics are the distributions of Metrics, in the order of the Durations table.
func durationMetrics() []statField[Metrics, DurationStats] {
	return []statField[Metrics, DurationStats]{
		{"connect", "connect", func(m *Metrics) *DurationStats { return &m.Connect }},
		{"tls", "TLS handshake", func(m *Metrics) *DurationStats { return &m.TLS }},
		{"headers", "time to headers", func(m *Metrics) *DurationStats { return &m.TimeToHeaders }},
		{"ttfe", "time to first event", func(m *Metrics) *DurationStats { return &m.TimeToFirstEvent }},
		{"latency", "delivery latency", func(m *Metrics) *DurationStats { return &m.Latency }},
		{"reconnect_delay", "reconnect delay", func(m *Metrics) *DurationStats { return &m.ReconnectDelay }},
		{"gap", "gap between events", func(m *Metrics) *DurationStats { return &m.Gap }},
		{"start_lag", "start lag", func(m *Metrics) *DurationStats { return &m.StartLag }},
		{"pool_wait", "pool wait", func(m *Metrics) *DurationStats { return &m.PoolWait }},
		{"lifetime", "stream lifetime", func(m *Metrics) *DurationStats { return &m.Lifetime }},
		{"silence", "silence on the wire", func(m *Metrics) *DurationStats { return &m.Silence }},
		{"mark_latency", "publish to delivery", func(m *Metrics) *DurationStats { return &m.MarkLatency }},
	}
}

// figureSuffixes name the figures of a distribution in metric names, in the order of
// DurationStats.figures and ValueStats.figures.
var figureSuffixes = [...]string{"p50", "p90", "p99", "max", "mean"}

func (s *DurationStats) figures() [len(figureSuffixes)]float64 {
	return [...]float64{s.P50MS, s.P90MS, s.P99MS, s.MaxMS, s.MeanMS}
}

func (s *ValueStats) figures() [len(figureSuffixes)]float64 {
	return [...]float64{s.P50, s.P90, s.P99, s.Max, s.Mean}
}

func (s *DurationStats) samples() uint64 { return s.Count }
func (s *ValueStats) samples() uint64    { return s.Count }

// figureDefs are the metrics PREFIX+NAME_p50, _p90, _p99, _max and _mean of each field of
// the metrics of picks from a scenario: no value without them or without samples.
func figureDefs[M, S any, P interface {
	*S
	figures() [len(figureSuffixes)]float64
	samples() uint64
}](prefix string, fields []statField[M, S], u unit, worse int, explain func(*ScenarioResult) string, of func(*ScenarioResult) *M) []metricDef {
	var defs []metricDef
	for _, f := range fields {
		for i, suffix := range figureSuffixes {
			get := f.get
			defs = append(defs, metricDef{name: prefix + f.name + "_" + suffix, unit: u, worse: worse, explain: explain,
				get: func(s *ScenarioResult) (float64, bool) {
					m := of(s)
					if m == nil {
						return 0, false
					}
					st := P(get(m))
					return st.figures()[i], st.samples() > 0
				}})
		}
	}
	return defs
}

// metricCatalog lists every static metric name. Dynamic names are handled by
// lookupMetric: errors.CLASS, close.REASON, status.CODE, not_opened.CLASS, measure.NAME.
func metricCatalog() []metricDef {
	count := func(name string, worse int, f func(*Metrics) int64) metricDef {
		return metricDef{name: name, unit: unitCount, worse: worse, get: func(s *ScenarioResult) (float64, bool) {
			return float64(f(&s.Metrics)), true
		}}
	}
	defs := []metricDef{
		count("streams", -1, func(m *Metrics) int64 { return m.Streams }),
		count("started", 0, func(m *Metrics) int64 { return m.Started }),
		count("heads", 0, func(m *Metrics) int64 { return m.Heads }),
		count("opens", -1, func(m *Metrics) int64 { return m.Opens }),
		// Streams the scenario asked for that never opened (no value without a request).
		{name: "unopened_streams", unit: unitCount, worse: 1, get: func(s *ScenarioResult) (float64, bool) {
			req := int64(s.Load.Requested.Streams)
			return float64(max(req-s.Metrics.Streams, 0)), req > 0
		}, explain: explainUnopened},
		count("streams_with_events", -1, func(m *Metrics) int64 { return m.StreamsWithEvents }),
		count("batched_events", 1, func(m *Metrics) int64 { return m.BatchedEvents }),
		// Streams asked for that got no event at all (no value without a request).
		{name: "silent_streams", unit: unitCount, worse: 1, get: func(s *ScenarioResult) (float64, bool) {
			req := int64(s.Load.Requested.Streams)
			return float64(max(req-s.Metrics.StreamsWithEvents, 0)), req > 0
		}, explain: explainSilent},
		count("attempts", 0, func(m *Metrics) int64 { return m.Attempts }),
		count("peak_open", -1, func(m *Metrics) int64 { return m.PeakOpen }),
		count("events", -1, func(m *Metrics) int64 { return m.Events }),
		count("comments", 0, func(m *Metrics) int64 { return m.Comments }),
		{name: "bytes", unit: unitBytes, get: func(s *ScenarioResult) (float64, bool) { return float64(s.Metrics.Bytes), true }},
		count("reconnects", 1, func(m *Metrics) int64 { return m.Reconnects }),
		count("errors", 1, func(m *Metrics) int64 { return m.ErrorTotal() }),
		count("missing_ids", 1, func(m *Metrics) int64 { return m.MissingIDs }),
		count("duplicate_ids", 1, func(m *Metrics) int64 { return m.DuplicateIDs }),
		count("out_of_order_ids", 1, func(m *Metrics) int64 { return m.OutOfOrderIDs }),
		count("duplicate_senders", 1, func(m *Metrics) int64 { return m.DuplicateSenders }),
		// Attempts that opened and then ended by a network error, with the lifetimes.
		{name: "abrupt_ends", unit: unitCount, worse: 1, get: func(s *ScenarioResult) (float64, bool) {
			return float64(s.Metrics.AbruptEnds), true
		}, explain: explainAbrupt},
		count("numeric_ids", 0, func(m *Metrics) int64 { return m.NumericIDs }),
		count("opaque_ids", 0, func(m *Metrics) int64 { return m.OpaqueIDs }),
		count("id_resets", 0, func(m *Metrics) int64 { return m.IDResets }),
		count("id_jumps", 0, func(m *Metrics) int64 { return m.IDJumps }),
		count("published", 0, func(m *Metrics) int64 { return m.Published }),
		count("publish_errors", 1, func(m *Metrics) int64 { return m.PublishErrors }),
		count("mark_events", -1, func(m *Metrics) int64 { return m.MarkEvents }),
		count("marks_lost", 1, func(m *Metrics) int64 { return m.MarksLost }),
		count("mark_duplicates", 1, func(m *Metrics) int64 { return m.MarkDuplicates }),
		count("marks_out_of_order", 1, func(m *Metrics) int64 { return m.MarksOutOfOrder }),
		count("quick_ends", 1, func(m *Metrics) int64 { return m.QuickEnds }),
		// Share of events that arrived within BatchGap of the previous one of their
		// stream (no value without events).
		{name: "batched_share", unit: unitRatio, worse: 1, get: func(s *ScenarioResult) (float64, bool) {
			m := &s.Metrics
			return float64(m.BatchedEvents) / float64(max(m.Events, 1)), m.Events > 0
		}, explain: explainBatched},
	}
	defs = append(defs, figureDefs("", durationMetrics(), unitMS, 1, nil, func(s *ScenarioResult) *Metrics { return &s.Metrics })...)
	defs = append(defs, requestMetricDefs()...)
	defs = append(defs, reconnectRateDefs()...)
	return append(defs, serverMetricDefs()...)
}

func explainUnopened(s *ScenarioResult) string {
	m := &s.Metrics
	d := fmt.Sprintf("%d of %d streams opened (status 200, text/event-stream)", m.Streams, s.Load.Requested.Streams)
	if b := breakdown(m.NotOpened); b != "" {
		d += "; attempts not opened: " + b
	}
	return d
}

func explainSilent(s *ScenarioResult) string {
	m := &s.Metrics
	d := fmt.Sprintf("%d of %d streams got events", m.StreamsWithEvents, s.Load.Requested.Streams)
	if m.Events > 0 {
		d += fmt.Sprintf("; %d events, %.0f%% arrived in batches (<5ms after the previous)", m.Events, 100*float64(m.BatchedEvents)/float64(m.Events))
	}
	return d
}

func explainAbrupt(s *ScenarioResult) string {
	l := &s.Metrics.Lifetime
	if l.Count == 0 {
		return "no attempt opened"
	}
	return fmt.Sprintf("%d of %d attempts that opened ended by a network error; lifetimes p50 %s, p90 %s, max %s; close reasons %s",
		s.Metrics.AbruptEnds, l.Count, fmtMS(l.P50MS), fmtMS(l.P90MS), fmtMS(l.MaxMS), breakdown(s.Metrics.CloseReasons))
}

func explainBatched(s *ScenarioResult) string {
	m := &s.Metrics
	bursts := m.Events - m.BatchedEvents
	return fmt.Sprintf("%d events in %d bursts (%.1f events per burst; an event within 5ms of the previous joins its burst)",
		m.Events, bursts, float64(m.Events)/float64(max(bursts, 1)))
}

// serverMetricDefs are server_goroutines_* and server_rss_bytes_*: baseline, peak,
// after_drain and per_stream of the probe's figures (no value without them).
func serverMetricDefs() []metricDef {
	var defs []metricDef
	for _, sm := range []struct {
		label, key string
		unit       unit
	}{{"goroutines", ServerGoroutines, unitCount}, {"rss_bytes", ServerRSS, unitBytes}} {
		for _, st := range []struct {
			suffix string
			pick   func(ServerMetric) *float64
			unit   unit
		}{
			{"baseline", func(m ServerMetric) *float64 { return m.Baseline }, sm.unit},
			{"peak", func(m ServerMetric) *float64 { return m.Peak }, sm.unit},
			{"after_drain", func(m ServerMetric) *float64 { return m.AfterDrain }, sm.unit},
			{"per_stream", func(m ServerMetric) *float64 { return m.PerStream }, perStreamUnit(sm.unit)},
		} {
			key, pick := sm.key, st.pick
			defs = append(defs, metricDef{name: "server_" + sm.label + "_" + st.suffix, unit: st.unit, worse: 1,
				get: func(s *ScenarioResult) (float64, bool) {
					m, ok := s.Server.Metric(key)
					if !ok || pick(m) == nil {
						return 0, false
					}
					return *pick(m), true
				}})
		}
	}
	return defs
}

func perStreamUnit(u unit) unit {
	if u == unitCount {
		return unitRatio
	}
	return u
}

// MetricNames lists the metric names rules, thresholds and compare accept, sorted, with
// the dynamic patterns last.
func MetricNames() []string {
	var names []string
	for _, d := range metricCatalog() {
		names = append(names, d.name)
	}
	sort.Strings(names)
	return append(names, "errors.CLASS", "close.REASON", "status.CODE", "not_opened.CLASS", "measure.NAME")
}

// lookupMetric finds the definition of name, static or dynamic.
func lookupMetric(name string) (metricDef, bool) {
	for _, d := range metricCatalog() {
		if d.name == name {
			return d, true
		}
	}
	dynamic := []struct {
		prefix string
		worse  int
		pick   func(*Metrics) map[string]int64
	}{
		{"errors.", 1, func(m *Metrics) map[string]int64 { return m.Errors }},
		{"close.", 0, func(m *Metrics) map[string]int64 { return m.CloseReasons }},
		{"status.", 0, func(m *Metrics) map[string]int64 { return m.Statuses }},
		{"not_opened.", 1, func(m *Metrics) map[string]int64 { return m.NotOpened }},
	}
	if key, ok := strings.CutPrefix(name, "measure."); ok && key != "" {
		return measureDef(name, key), true
	}
	for _, d := range dynamic {
		key, ok := strings.CutPrefix(name, d.prefix)
		if !ok || key == "" {
			continue
		}
		pick := d.pick
		return metricDef{name: name, unit: unitCount, worse: d.worse, get: func(s *ScenarioResult) (float64, bool) {
			return float64(pick(&s.Metrics)[key]), true
		}}, true
	}
	return metricDef{}, false
}

// MetricValue reads the metric called name from s (durations in milliseconds, memory in
// bytes, counts as counts). ok is false when s has no value for it (no samples, server
// figure not available); err is set for an unknown name.
func MetricValue(s *ScenarioResult, name string) (v float64, ok bool, err error) {
	d, found := lookupMetric(name)
	if !found {
		return 0, false, fmt.Errorf("unknown metric %q", name)
	}
	v, ok = d.get(s)
	return v, ok, nil
}

// Rule is a check over the metrics: it passes when `value Op Limit` holds, where value
// is Metric (of Group; "" is the whole scenario) plus every Plus term minus every Minus
// term, e.g. latency_p99 of group "proxy" minus latency_p99 of group "direct" <= 500.
// Limit is in the metrics' unit: milliseconds for durations, bytes for memory, a count
// otherwise. Every figure a rule reads is mergeable, so a merged result judges it
// exactly.
type Rule struct {
	Metric string  `json:"metric"`
	Group  string  `json:"group,omitempty"`
	Plus   []Term  `json:"plus,omitempty"`
	Minus  []Term  `json:"minus,omitempty"`
	Op     string  `json:"op"` // "<=", "<", ">=", ">", "=="
	Limit  float64 `json:"limit"`
	// Needs is the evidence the rule judges on, in its group and in every term's: without
	// any of it the check is n/a, saying what was missing, never a pass on nothing
	// ("0 of 0 streams failed").
	Needs []Evidence `json:"needs,omitempty"`
	// And are rules that must hold as well for the check to pass.
	And []Rule `json:"and,omitempty"`
}

// Term is one metric of one group in a Rule's sum.
type Term struct {
	Metric string `json:"metric"`
	Group  string `json:"group,omitempty"`
}

func (t Term) label() string {
	if t.Group == "" {
		return t.Metric
	}
	return t.Group + " " + t.Metric
}

// GroupResult holds the metrics of one named group of streams or window of time of a
// scenario (e.g. "direct" and "proxy", or "step-400"): the same bounded, mergeable
// figures as the scenario's, over that part of its records.
type GroupResult struct {
	Name string `json:"name"`
	// Requested is how many streams the scenario asked for in the group (0 for a window
	// over all streams).
	Requested int     `json:"requested_streams,omitempty"`
	Metrics   Metrics `json:"metrics"`
}

// view is s restricted to a group ("" is s itself); ok is false for an unknown group.
func (s *ScenarioResult) view(group string) (*ScenarioResult, bool) {
	if group == "" {
		return s, true
	}
	for i := range s.Groups {
		g := &s.Groups[i]
		if g.Name == group {
			req := g.Requested
			return &ScenarioResult{Name: s.Name, Metrics: g.Metrics, Server: s.Server,
				Load: Workload{Requested: RequestedLoad{Streams: req}}}, true
		}
	}
	return nil, false
}

// Group returns the metrics of the named group or window.
func (s *ScenarioResult) Group(name string) (Metrics, bool) {
	v, ok := s.view(name)
	if !ok || name == "" {
		return Metrics{}, false
	}
	return v.Metrics, true
}

// Evidence is something a rule needs to have been observed before it can judge.
type Evidence string

// Kinds of evidence.
const (
	// EvidenceHead: at least one response head arrived (any status).
	EvidenceHead Evidence = "head"
	// EvidenceOpened: at least one stream opened (status 200, text/event-stream).
	EvidenceOpened Evidence = "opened"
	// EvidenceEvent: at least one event arrived.
	EvidenceEvent Evidence = "event"
	// EvidenceServer: the target's metrics were scraped.
	EvidenceServer Evidence = "server"
	// EvidenceNumericIDs: at least one event had a plain numeric id, so ids can be
	// checked for gaps and order.
	EvidenceNumericIDs Evidence = "numeric-ids"
	// EvidenceMarks: at least one event carried a mark the harness published.
	EvidenceMarks Evidence = "marks"
)

// missing says why s lacks e, "" when it has it.
func (e Evidence) missing(s *ScenarioResult) string {
	m := &s.Metrics
	notOpened := ""
	if b := breakdown(m.NotOpened); b != "" {
		notOpened = " (not opened: " + b + ")"
	}
	switch e {
	case EvidenceHead:
		if m.Heads == 0 {
			return "no response head arrived" + notOpened
		}
	case EvidenceOpened:
		if m.Streams == 0 {
			return "no stream opened" + notOpened
		}
	case EvidenceEvent:
		if m.Events == 0 {
			if m.Streams == 0 {
				return "no event: no stream opened" + notOpened
			}
			return "no event arrived on any stream"
		}
	case EvidenceServer:
		if !s.Server.Available() {
			return "the target's metrics were not read (--metrics-url)"
		}
	case EvidenceNumericIDs:
		if m.NumericIDs == 0 {
			if m.OpaqueIDs > 0 {
				return fmt.Sprintf("the target's ids are not numbers (%d events with ids such as uuids): gaps and order cannot be told from them (give --publish-url to measure loss)", m.OpaqueIDs)
			}
			return "no event carried a numeric id"
		}
	case EvidenceMarks:
		if m.MarkEvents == 0 {
			if m.Published == 0 {
				return "no mark was published (--publish-url)"
			}
			return fmt.Sprintf("none of the %d published marks arrived on any stream", m.Published)
		}
	case EvidenceRequest:
		return missingRequest(s)
	default:
		return fmt.Sprintf("unknown evidence %q", string(e))
	}
	return ""
}

// Validate reports every problem with the rule at once: an unknown metric, operator
// or evidence, in it or in the rules of And.
func (r Rule) Validate() error {
	var errs []error
	for _, t := range r.terms() {
		if _, ok := lookupMetric(t.Metric); !ok {
			errs = append(errs, fmt.Errorf("unknown metric %q", t.Metric))
		}
	}
	for _, a := range r.And {
		if err := a.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := r.holds(0); err != nil {
		errs = append(errs, err)
	}
	for _, e := range r.Needs {
		switch e {
		case EvidenceHead, EvidenceOpened, EvidenceEvent, EvidenceServer, EvidenceNumericIDs, EvidenceMarks, EvidenceRequest:
		default:
			errs = append(errs, fmt.Errorf("unknown evidence %q", string(e)))
		}
	}
	return errors.Join(errs...)
}

func (r Rule) holds(v float64) (bool, error) {
	switch r.Op {
	case "<=":
		return v <= r.Limit, nil
	case "<":
		return v < r.Limit, nil
	case ">=":
		return v >= r.Limit, nil
	case ">":
		return v > r.Limit, nil
	case "==":
		return v == r.Limit, nil
	}
	return false, fmt.Errorf("unknown operator %q (want <=, <, >=, > or ==)", r.Op)
}

func (r Rule) label() string { return Term{Metric: r.Metric, Group: r.Group}.label() }

// terms lists the rule's own metric first, then Plus, then Minus.
func (r Rule) terms() []Term {
	ts := []Term{{Metric: r.Metric, Group: r.Group}}
	ts = append(ts, r.Plus...)
	return append(ts, r.Minus...)
}

// sign is how term i of terms counts in the rule's value: +1 for the metric and Plus, -1
// for Minus.
func (r Rule) sign(i int) float64 {
	if i <= len(r.Plus) {
		return 1
	}
	return -1
}

// evaluate sets c's verdict, measured value and threshold from s. A missing piece of
// evidence or a metric with no value gives n/a, saying why; an unknown metric, group or
// operator fails the check loudly, since it is a mistake in the scenario, not a finding
// to hide. With And, the check fails when any rule fails, else is n/a when any is n/a.
func (r Rule) evaluate(s *ScenarioResult, c *Check) {
	r.evaluateOne(s, c)
	if len(r.And) > 0 && c.Measured != "" && len(r.terms()) == 1 {
		c.Measured = r.label() + " " + c.Measured
	}
	for _, a := range r.And {
		sub := Check{Threshold: "-"}
		a.evaluateOne(s, &sub)
		if sub.Measured != "" {
			sub.Measured = a.label() + " " + sub.Measured
		}
		c.Measured = joinNonEmpty("; ", c.Measured, sub.Measured)
		c.Detail = joinNonEmpty("; ", c.Detail, sub.Detail)
		switch {
		case c.Verdict == VerdictFail || sub.Verdict == VerdictFail:
			c.Verdict = VerdictFail
		case sub.Verdict == VerdictNotApplicable:
			c.Verdict = VerdictNotApplicable
		}
	}
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

func (r Rule) evaluateOne(s *ScenarioResult, c *Check) {
	d, found := lookupMetric(r.Metric)
	if !found {
		c.Verdict, c.Measured, c.Detail = VerdictFail, "", fmt.Sprintf("rule names unknown metric %q", r.Metric)
		return
	}
	if c.Threshold == "" {
		c.Threshold = r.Op + " " + d.unit.format(r.Limit)
	}
	// Computed afresh every time (a merged result is judged again from its metrics).
	c.Detail = ""
	var v float64
	var parts []string
	for i, t := range r.terms() {
		view, ok := s.view(t.Group)
		if !ok {
			c.Verdict, c.Measured, c.Detail = VerdictFail, "", fmt.Sprintf("rule names unknown group %q", t.Group)
			return
		}
		for _, e := range r.Needs {
			if why := e.missing(view); why != "" {
				if t.Group != "" {
					why = t.Group + ": " + why
				}
				c.Verdict, c.Measured, c.Detail = VerdictNotApplicable, "n/a", why
				return
			}
		}
		td, found := lookupMetric(t.Metric)
		if !found {
			c.Verdict, c.Measured, c.Detail = VerdictFail, "", fmt.Sprintf("rule names unknown metric %q", t.Metric)
			return
		}
		tv, ok := td.get(view)
		if !ok {
			c.Verdict, c.Measured, c.Detail = VerdictNotApplicable, "n/a", "no value for "+t.label()
			return
		}
		v += r.sign(i) * tv
		parts = append(parts, t.label()+" "+td.unit.format(tv))
		if i == 0 && td.explain != nil {
			c.Detail = td.explain(view)
		}
	}
	c.Measured = d.unit.format(v)
	if len(parts) > 1 {
		c.Measured += " (" + strings.Join(parts, ", ") + ")"
	}
	pass, err := r.holds(v)
	switch {
	case err != nil:
		c.Verdict, c.Detail = VerdictFail, "rule: "+err.Error()
	case pass:
		c.Verdict = VerdictPass
	default:
		c.Verdict = VerdictFail
	}
	if math.IsNaN(v) {
		c.Verdict = VerdictFail
	}
}
