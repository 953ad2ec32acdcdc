package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Merge combines the results of the shards of one distributed run (`run --shard I/N`)
// into the result of the whole run:
//
//   - counts add up (streams, events, bytes, ids, errors by class, close reasons, ...);
//   - durations merge through their histograms, so the merged percentiles are exactly
//     those of one histogram fed every sample (within HistogramRelativeError of the exact
//     values); percentiles are never averaged;
//   - the timeline adds per step (open connections as the sum of each shard's peak in the
//     step, an upper bound of the true peak within one step);
//   - server figures are taken once, from the lowest shard that has them, since every
//     shard probed the same server; per-stream figures are recomputed over all streams;
//   - groups and windows merge by name like the scenario's metrics; measures by their
//     own policy (counts over each shard's streams add, figures of the one server take
//     the worst shard's: exact when the shards scraped one server, which is what a
//     server-metric check is about; when their results name different metrics URLs
//     the merged measure's note says that it is the worst of several servers' figures,
//     not one server's);
//   - checks with a Rule (every scenario check) are re-evaluated on the merged figures;
//     other checks (conformance findings, n/a) cannot be, so they get the worst shard
//     verdict, each shard's measurement, and Merged set.
//
// The shards must name the same target and harness version; when they carry shard
// numbers, every shard 0..N-1 must be present exactly once.
func Merge(shards []*Result) (*Result, error) {
	if len(shards) == 0 {
		return nil, errors.New("merge: no shard results")
	}
	order, err := shardOrder(shards)
	if err != nil {
		return nil, err
	}
	first := shards[order[0]]
	out := &Result{
		HarnessVersion: first.HarnessVersion,
		Target:         first.Target,
		Start:          first.Start,
		End:            first.End,
		Config:         first.Config,
		MergedShards:   len(shards),
	}
	var names []string
	byName := map[string][]shardScenario{}
	for _, i := range order {
		r := shards[i]
		out.Incomplete = out.Incomplete || r.Incomplete
		if r.Target != first.Target {
			return nil, fmt.Errorf("merge: shards ran against different targets: %q and %q", first.Target, r.Target)
		}
		if r.HarnessVersion != first.HarnessVersion {
			return nil, fmt.Errorf("merge: shards were written by different harness versions: %s and %s", first.HarnessVersion, r.HarnessVersion)
		}
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		out.Runner = append(out.Runner, r.Runner...)
		out.Starts = append(out.Starts, r.Starts...)
		for j := range r.Scenarios {
			s := &r.Scenarios[j]
			if _, ok := byName[s.Name]; !ok {
				names = append(names, s.Name)
			}
			byName[s.Name] = append(byName[s.Name], shardScenario{label: shardLabel(r, i), s: s, metricsURL: metricsURLOf(r.Config)})
		}
	}
	for _, name := range names {
		s, err := mergeScenario(byName[name])
		if err != nil {
			return nil, fmt.Errorf("merge: scenario %s: %w", name, err)
		}
		out.Scenarios = append(out.Scenarios, s)
	}
	out.Evaluate()
	return out, nil
}

type shardScenario struct {
	label string // "shard 2/4", or "result 3" without shard numbers
	s     *ScenarioResult
	// metricsURL is the server metrics endpoint the shard's run scraped, from its
	// resolved configuration ("" when it does not say).
	metricsURL string
}

// metricsURLOf reads the metrics_url of a result's resolved configuration (a struct in
// memory, a map once loaded from a file); "" when it has none.
func metricsURLOf(config any) string {
	if config == nil {
		return ""
	}
	b, err := json.Marshal(config)
	if err != nil {
		return ""
	}
	var c struct {
		MetricsURL string `json:"metrics_url"`
	}
	_ = json.Unmarshal(b, &c)
	return c.MetricsURL
}

func shardLabel(r *Result, i int) string {
	if r.Shard != nil {
		return fmt.Sprintf("shard %d/%d", r.Shard.Index, r.Shard.Count)
	}
	return fmt.Sprintf("result %d", i+1)
}

// shardOrder checks the shard numbers and returns the indexes of shards in shard order
// (argument order when they have none).
func shardOrder(shards []*Result) ([]int, error) {
	order := make([]int, len(shards))
	for i := range order {
		order[i] = i
	}
	numbered := 0
	for _, r := range shards {
		if r.Shard != nil {
			numbered++
		}
	}
	if numbered == 0 {
		return order, nil
	}
	if numbered != len(shards) {
		return nil, errors.New("merge: some results are shards of a run and some are not")
	}
	count := shards[0].Shard.Count
	seen := map[int]bool{}
	var errs []error
	for _, r := range shards {
		if r.Shard.Count != count {
			return nil, fmt.Errorf("merge: shards disagree on the shard count (%d and %d)", count, r.Shard.Count)
		}
		if r.Shard.Index < 0 || r.Shard.Index >= count {
			errs = append(errs, fmt.Errorf("shard %d/%d is out of range", r.Shard.Index, count))
			continue
		}
		if seen[r.Shard.Index] {
			errs = append(errs, fmt.Errorf("shard %d/%d is given twice", r.Shard.Index, count))
		}
		seen[r.Shard.Index] = true
	}
	for i := 0; i < count; i++ {
		if !seen[i] {
			errs = append(errs, fmt.Errorf("shard %d/%d is missing", i, count))
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("merge: %s", strings.Join(msgs, "; "))
	}
	sort.SliceStable(order, func(a, b int) bool { return shards[order[a]].Shard.Index < shards[order[b]].Shard.Index })
	return order, nil
}

func mergeScenario(parts []shardScenario) (ScenarioResult, error) {
	first := parts[0].s
	s := ScenarioResult{
		Name: first.Name, Description: first.Description, Headline: first.Headline, Start: first.Start, End: first.End,
		Load: Workload{Requested: RequestedLoad{HoldMS: first.Load.Requested.HoldMS, Note: first.Load.Requested.Note}},
	}
	var errs []string
	var timelines []Timeline
	var peaks int64
	for k, p := range parts {
		if p.s.Start.Before(s.Start) {
			s.Start = p.s.Start
		}
		if p.s.End.After(s.End) {
			s.End = p.s.End
		}
		if p.s.Error != "" {
			errs = append(errs, p.label+": "+p.s.Error)
		}
		req := p.s.Load.Requested
		s.Load.Requested.Streams += req.Streams
		s.Load.Requested.Browsers += req.Browsers
		s.Load.Requested.OpenRate += req.OpenRate
		if k == 0 {
			s.Metrics = cloneMetrics(p.s.Metrics)
		} else if err := s.Metrics.merge(p.s.Metrics); err != nil {
			return s, fmt.Errorf("%s: %w", p.label, err)
		}
		peaks += p.s.Metrics.PeakOpen
		if err := mergeGroups(&s.Groups, p.s.Groups); err != nil {
			return s, fmt.Errorf("%s: %w", p.label, err)
		}
		if len(p.s.Timeline.Points) > 0 {
			timelines = append(timelines, p.s.Timeline)
		}
	}
	measures, err := mergeMeasures(parts)
	if err != nil {
		return s, err
	}
	s.Measures = measures
	s.Error = strings.Join(errs, "; ")
	s.Timeline = mergeTimelines(timelines)
	s.Metrics.PeakOpen = peaks
	if len(s.Timeline.Points) > 0 {
		s.Metrics.PeakOpen = 0
		for _, p := range s.Timeline.Points {
			s.Metrics.PeakOpen = max(s.Metrics.PeakOpen, p.Open)
		}
	}
	s.Server = mergeServer(parts, s.Metrics.Streams)
	s.Checks = mergeChecks(parts)
	s.Overlap = overlapOf(parts)
	s.Evaluate()
	return s, nil
}

// mergeGroups adds each group of src into the group of the same name in dst (appended
// when new): counts add, durations merge through histograms, requested streams add.
func mergeGroups(dst *[]GroupResult, src []GroupResult) error {
	for _, g := range src {
		found := false
		for i := range *dst {
			d := &(*dst)[i]
			if d.Name != g.Name {
				continue
			}
			found = true
			d.Requested += g.Requested
			if err := d.Metrics.merge(g.Metrics); err != nil {
				return fmt.Errorf("group %s: %w", g.Name, err)
			}
		}
		if !found {
			*dst = append(*dst, GroupResult{Name: g.Name, Requested: g.Requested, Metrics: cloneMetrics(g.Metrics)})
		}
	}
	return nil
}

func cloneMetrics(m Metrics) Metrics {
	c := m
	c.Errors = cloneCounts(m.Errors)
	c.CloseReasons = cloneCounts(m.CloseReasons)
	c.Statuses = cloneCounts(m.Statuses)
	c.Protocols = cloneCounts(m.Protocols)
	c.NotOpened = cloneCounts(m.NotOpened)
	c.Requests = cloneRequestMetrics(m.Requests)
	for _, d := range durationMetrics() {
		ds := d.get(&c)
		if ds.Histogram != nil {
			ds.Histogram = ds.Histogram.Clone()
		}
	}
	return c
}

// merge adds o into m: counts add, durations merge through histograms.
func (m *Metrics) merge(o Metrics) error {
	m.Records += o.Records
	m.Started += o.Started
	m.Streams += o.Streams
	m.Attempts += o.Attempts
	m.Heads += o.Heads
	m.Opens += o.Opens
	m.Events += o.Events
	m.StreamsWithEvents += o.StreamsWithEvents
	m.BatchedEvents += o.BatchedEvents
	m.Comments += o.Comments
	m.Bytes += o.Bytes
	m.RetryFields += o.RetryFields
	m.Reconnects += o.Reconnects
	m.MissingIDs += o.MissingIDs
	m.DuplicateIDs += o.DuplicateIDs
	m.OutOfOrderIDs += o.OutOfOrderIDs
	m.DuplicateSenders += o.DuplicateSenders
	m.AbruptEnds += o.AbruptEnds
	for _, c := range []struct{ dst, src *int64 }{
		{&m.NumericIDs, &o.NumericIDs}, {&m.OpaqueIDs, &o.OpaqueIDs}, {&m.IDResets, &o.IDResets}, {&m.IDJumps, &o.IDJumps},
		{&m.JumpedIDs, &o.JumpedIDs}, {&m.Published, &o.Published}, {&m.PublishErrors, &o.PublishErrors},
		{&m.MarkEvents, &o.MarkEvents}, {&m.MarksLost, &o.MarksLost}, {&m.MarkDuplicates, &o.MarkDuplicates},
		{&m.MarksOutOfOrder, &o.MarksOutOfOrder}, {&m.QuickEnds, &o.QuickEnds},
	} {
		*c.dst += *c.src
	}
	if !o.FirstOpen.IsZero() && (m.FirstOpen.IsZero() || o.FirstOpen.Before(m.FirstOpen)) {
		m.FirstOpen = o.FirstOpen
	}
	if o.LastOpen.After(m.LastOpen) {
		m.LastOpen = o.LastOpen
	}
	for _, pair := range []struct{ dst, src *map[string]int64 }{
		{&m.Errors, &o.Errors}, {&m.CloseReasons, &o.CloseReasons}, {&m.Statuses, &o.Statuses}, {&m.Protocols, &o.Protocols},
		{&m.NotOpened, &o.NotOpened},
	} {
		if *pair.dst == nil {
			*pair.dst = map[string]int64{}
		}
		for k, v := range *pair.src {
			(*pair.dst)[k] += v
		}
	}
	for _, d := range durationMetrics() {
		if err := d.get(m).merge(*d.get(&o)); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return mergeRequests(&m.Requests, o.Requests)
}

// mergeTimelines adds timelines that may start at different times and have different
// steps: the merged one starts at the earliest start with the widest step, and each
// shard point goes to the merged step containing its start.
func mergeTimelines(ts []Timeline) Timeline {
	if len(ts) == 0 {
		return Timeline{}
	}
	out := Timeline{Start: ts[0].Start, StepMS: ts[0].StepMS}
	for _, t := range ts {
		if t.Start.Before(out.Start) {
			out.Start = t.Start
		}
		out.StepMS = max(out.StepMS, t.StepMS)
	}
	step := out.Step()
	if step <= 0 {
		return Timeline{}
	}
	for _, t := range ts {
		peak := map[int]int64{} // this shard's peak per merged step
		for i, p := range t.Points {
			at := t.Start.Add(time.Duration(i) * t.Step())
			k := int(at.Sub(out.Start) / step)
			for len(out.Points) <= k {
				out.Points = append(out.Points, TimelinePoint{})
			}
			q := &out.Points[k]
			q.Opened += p.Opened
			q.Events += p.Events
			q.Errors += p.Errors
			peak[k] = max(peak[k], p.Open)
		}
		for k, v := range peak {
			out.Points[k].Open += v
		}
	}
	return out
}

// mergeServer merges the shards' server figures. Shards that scraped one server (one
// metrics URL, or none said) saw the same figures: the first shard's are taken. Shards
// that scraped different servers (each its own serve process) saw parts of the load:
// each server's figures are taken once (from the first shard that scraped it) and added
// up, a metric only when every server has it; the peaks are each server's own, so
// their sum bounds the servers' simultaneous peak from above. Per stream is over all
// shards' streams either way.
func mergeServer(parts []shardScenario, streams int64) ServerFigures {
	var firsts []shardScenario // the first shard with figures of each server
	seen := map[string]bool{}
	for _, p := range parts {
		if !p.s.Server.Available() || seen[p.metricsURL] {
			continue
		}
		seen[p.metricsURL] = true
		firsts = append(firsts, p)
	}
	switch len(firsts) {
	case 0:
		return parts[0].s.Server
	case 1:
		f := firsts[0].s.Server
		f.Metrics = perStreamOver(append([]ServerMetric(nil), f.Metrics...), streams)
		f.Note = "taken from " + firsts[0].label + " (every shard probes the same server); per stream over all shards' streams"
		return f
	}
	var f ServerFigures
	urls := make([]string, len(firsts))
	for k, p := range firsts {
		urls[k] = p.metricsURL
	}
	for _, m := range firsts[0].s.Server.Metrics {
		sum := ServerMetric{Name: m.Name, Baseline: new(float64), Peak: new(float64), AfterDrain: new(float64)}
		for _, p := range firsts {
			i := slices.IndexFunc(p.s.Server.Metrics, func(o ServerMetric) bool { return o.Name == m.Name })
			if i < 0 {
				sum.Baseline, sum.Peak, sum.AfterDrain = nil, nil, nil
				break
			}
			o := p.s.Server.Metrics[i]
			sum.Baseline, sum.Peak, sum.AfterDrain = addOrNil(sum.Baseline, o.Baseline), addOrNil(sum.Peak, o.Peak), addOrNil(sum.AfterDrain, o.AfterDrain)
		}
		f.Metrics = append(f.Metrics, sum)
	}
	f.Metrics = perStreamOver(f.Metrics, streams)
	f.Note = fmt.Sprintf("summed over %d different servers (%s), each server's figures from the first shard that scraped it; each server's own peak, so the sum bounds their simultaneous peak from above; per stream over all shards' streams", len(firsts), strings.Join(urls, ", "))
	return f
}

// perStreamOver sets each metric's per-stream figure over streams (nil without a
// baseline and a peak).
func perStreamOver(ms []ServerMetric, streams int64) []ServerMetric {
	for i := range ms {
		m := &ms[i]
		m.PerStream = nil
		if m.Peak != nil && m.Baseline != nil && streams > 0 {
			per := (*m.Peak - *m.Baseline) / float64(streams)
			m.PerStream = &per
		}
	}
	return ms
}

// addOrNil is a + b, nil when either is.
func addOrNil(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	v := *a + *b
	return &v
}

// verdictRank orders verdicts from best to worst for worst-of merging.
func verdictRank(c Check) int {
	switch {
	case c.Fails():
		return 5
	case c.Verdict == VerdictError:
		return 4
	case c.Verdict == VerdictFail:
		return 3 // a failed SHOULD/ADVISORY
	case c.Verdict == VerdictWarn:
		return 2
	case c.Verdict == VerdictPass:
		return 1
	}
	return 0 // n/a
}

func mergeChecks(parts []shardScenario) []Check {
	var names []string
	byName := map[string][]struct {
		label string
		c     Check
	}{}
	for _, p := range parts {
		for _, c := range p.s.Checks {
			if _, ok := byName[c.Name]; !ok {
				names = append(names, c.Name)
			}
			byName[c.Name] = append(byName[c.Name], struct {
				label string
				c     Check
			}{p.label, c})
		}
	}
	var out []Check
	for _, name := range names {
		list := byName[name]
		c := list[0].c
		if c.Rule != nil {
			rule := *c.Rule
			c.Rule = &rule
			c.Verdict, c.Measured = "", ""
			out = append(out, c) // Evaluate recomputes it from the merged metrics
			continue
		}
		worst := c
		same := true
		for _, e := range list {
			if verdictRank(e.c) > verdictRank(worst) {
				worst = e.c
			}
			same = same && e.c.Measured == c.Measured
		}
		var measured, details []string
		for _, e := range list {
			measured = append(measured, e.label+": "+orNA(e.c.Measured))
			if e.c.Detail != "" && e.c.Verdict == worst.Verdict {
				details = append(details, e.label+": "+e.c.Detail)
			}
		}
		c.Verdict = worst.Verdict
		c.Merged = true
		if !same {
			c.Measured = strings.Join(measured, "; ")
		}
		if len(list) > 1 {
			c.Detail = strings.Join(details, "; ")
		}
		out = append(out, c)
	}
	return out
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
