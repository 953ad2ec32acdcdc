package report

import (
	"fmt"
	"strconv"
	"strings"
)

// requestTables are the request-stream tables of a scenario: its requests, their
// latencies and sizes, and one row per group (request-capacity's rate steps).
func requestTables(s *ScenarioResult) []textTable {
	r := s.Metrics.Requests
	if r == nil {
		return nil
	}
	durs := textTable{title: "Request latencies (from the scheduled time)", header: durationHeader}
	for _, d := range requestDurations() {
		durs.rows = append(durs.rows, durationRow(d.label, d.get(r)))
	}
	per := textTable{title: "Per request (rates over sent -> end)", header: []string{"figure", "requests", "p50", "p90", "p99", "max"}}
	for _, v := range requestValues() {
		per.rows = append(per.rows, valueRow(v.label, v.get(r)))
	}
	out := []textTable{requestCounts(r), durs, per}
	if steps := requestSteps(s); len(steps.rows) > 0 {
		out = append(out, steps)
	}
	return out
}

// valueRow is a per-request figure's row, n/a without samples.
func valueRow(label string, s *ValueStats) []string {
	if s.Count == 0 {
		return []string{label, "0", "n/a", "n/a", "n/a", "n/a"}
	}
	return []string{label, strconv.FormatUint(s.Count, 10), fmtNumber(s.P50), fmtNumber(s.P90), fmtNumber(s.P99), fmtNumber(s.Max)}
}

// requestCounts is the table of a scenario's request counts.
func requestCounts(r *RequestMetrics) textTable {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	goodput := "n/a"
	if g, ok := r.Goodput(); ok {
		goodput = fmt.Sprintf("%.1f%% (%d of %d; SLO %s, terminated)", 100*g, r.Good, r.Requests, r.SLO)
	}
	tokens := "n/a (no usage count read: events are not tokens)"
	if r.UsageContentEvents > 0 {
		tokens = fmt.Sprintf("%d tokens in %d content events of %d requests (%.2f tokens per event)",
			r.UsageTokens, r.UsageContentEvents, r.UsageRequests, float64(r.UsageTokens)/float64(r.UsageContentEvents))
	}
	return textTable{title: "Requests", header: []string{"metric", "value"}, rows: [][]string{
		{"requests (ended)", n(r.Requests)},
		{"sent", n(r.Sent)},
		{"rate scheduled / achieved", fmtNumber(r.ScheduledRate) + "/s / " + fmtNumber(r.AchievedRate) + "/s"},
		{"ends", breakdown(r.Ends)},
		{"statuses", breakdown(r.Statuses)},
		{"goodput", goodput},
		{"events / content events", n(r.Events) + " / " + n(r.ContentEvents)},
		{"content bytes", fmtBytes(float64(r.ContentBytes))},
		{"server token count", tokens},
	}}
}

// requestSteps is a row per group with request streams (request-capacity's rate steps).
func requestSteps(s *ScenarioResult) textTable {
	steps := textTable{title: "Request steps", header: []string{"group", "scheduled", "achieved", "requests", "goodput", "TTFT p99", "ITL p99", "E2E p99", "ends"}}
	p99 := func(d DurationStats) string {
		if d.Count == 0 {
			return "n/a"
		}
		return fmtMS(d.P99MS)
	}
	for _, g := range s.Groups {
		q := g.Metrics.Requests
		if q == nil {
			continue
		}
		gp := "n/a"
		if v, ok := q.Goodput(); ok {
			gp = fmt.Sprintf("%.1f%%", 100*v)
		}
		steps.rows = append(steps.rows, []string{g.Name, fmtNumber(q.ScheduledRate) + "/s", fmtNumber(q.AchievedRate) + "/s",
			strconv.FormatInt(q.Requests, 10), gp, p99(q.TTFT), p99(q.ContentGap), p99(q.E2E), breakdown(q.Ends)})
	}
	return steps
}

// requestSummary is the headline of a scenario's request streams for CI logs; "" without.
func requestSummary(s *ScenarioResult) string {
	r := s.Metrics.Requests
	if r == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "requests %d (sent %d; %s), rate %s/s of %s/s scheduled", r.Requests, r.Sent, breakdown(r.Ends), fmtNumber(r.AchievedRate), fmtNumber(r.ScheduledRate))
	if g, ok := r.Goodput(); ok {
		fmt.Fprintf(&b, ", goodput %.1f%%", 100*g)
	}
	b.WriteString("\n")
	for _, d := range []struct {
		name string
		s    DurationStats
	}{{"time to first token", r.TTFT}, {"inter-token (content event gap)", r.ContentGap}, {"end to end", r.E2E}} {
		if d.s.Count > 0 {
			fmt.Fprintf(&b, "%s p50 %s p99 %s max %s\n", d.name, fmtMS(d.s.P50MS), fmtMS(d.s.P99MS), fmtMS(d.s.MaxMS))
		}
	}
	return b.String()
}
