package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// requestRecords makes the records of one request n: content events every gap after
// ttft, then an end of class end.
func requestRecords(n int, ttft, gap time.Duration, events int, usage int64, end runner.EndClass, waited time.Duration) []runner.RequestRecord {
	t0 := time.Unix(1000, 0).Add(time.Duration(n) * time.Second)
	var out []runner.RequestRecord
	var last time.Duration
	for i := range events {
		since := ttft + time.Duration(i)*gap
		r := runner.RequestRecord{Kind: runner.RequestChunk, Request: n, Time: t0.Add(since), Scheduled: t0,
			Since: since, Gap: -1, TokenGap: -1, Content: true, ContentBytes: 6}
		if i > 0 {
			r.Gap, r.TokenGap = gap, gap
		}
		out = append(out, r)
		last = since
	}
	e2e := last + time.Millisecond
	out = append(out, runner.RequestRecord{Kind: runner.RequestEnd, Request: n, Scheduled: t0, Time: t0.Add(e2e),
		Sent: t0.Add(waited), Waited: waited, TTHeaders: waited + time.Millisecond, TTFT: ttft, TTLast: last, E2E: e2e,
		Status: 200, Events: events, ContentEvents: events, ContentBytes: 6 * events, Usage: usage, End: end})
	return out
}

func TestRequestAggregate(t *testing.T) {
	agg, _ := NewAggregate(AggregateConfig{})
	if err := agg.SetRequestSLO(RequestSLO{TTFT: 100 * time.Millisecond, ITL: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	add := func(rs []runner.RequestRecord) {
		for _, r := range rs {
			agg.AddRequest(r)
		}
	}
	add(requestRecords(0, 50*time.Millisecond, 10*time.Millisecond, 5, 5, runner.EndTerminated, 0))                    // good
	add(requestRecords(1, 150*time.Millisecond, 10*time.Millisecond, 5, 5, runner.EndTerminated, 80*time.Millisecond)) // TTFT over
	add(requestRecords(2, 50*time.Millisecond, 40*time.Millisecond, 5, 20, runner.EndTerminated, 0))                   // ITL over, 4 tokens per event
	add(requestRecords(3, 50*time.Millisecond, 10*time.Millisecond, 3, -1, runner.EndNoTerminal, 0))                   // not terminated
	agg.AddRequest(runner.RequestRecord{Kind: runner.RequestEnd, Request: 4, TTHeaders: -1, TTFT: -1, TTLast: -1, E2E: -1, Usage: -1, End: runner.EndDropped, Waited: time.Second})
	agg.AddRequestRun(runner.RequestRun{ScheduledRate: 10, AchievedRate: 8})
	m := agg.Metrics().Requests
	if m == nil {
		t.Fatal("no request metrics")
	}
	if m.Requests != 5 || m.Sent != 4 || m.Good != 1 {
		t.Errorf("requests %d sent %d good %d, want 5 4 1", m.Requests, m.Sent, m.Good)
	}
	if g, _ := m.Goodput(); g != 0.2 {
		t.Errorf("goodput %v, want 0.2", g)
	}
	if m.Ends["terminated"] != 3 || m.Ends["no-terminal"] != 1 || m.Ends["dropped"] != 1 {
		t.Errorf("ends %v", m.Ends)
	}
	// Gaps across requests: 4+4+4 content gaps of 10ms, 4 of 40ms... request 3 adds 2.
	if m.ContentGap.Count != 14 || m.ContentGap.MaxMS != 40 {
		t.Errorf("content gaps: count %d max %v, want 14 and 40ms", m.ContentGap.Count, m.ContentGap.MaxMS)
	}
	if m.Waited.Count != 4 || m.Waited.MaxMS != 80 {
		t.Errorf("client wait over sent requests: count %d max %v, want 4 and 80ms", m.Waited.Count, m.Waited.MaxMS)
	}
	if m.UsageRequests != 3 || m.UsageTokens != 30 || m.UsageContentEvents != 15 {
		t.Errorf("usage %d requests %d tokens %d events", m.UsageRequests, m.UsageTokens, m.UsageContentEvents)
	}
	if m.TokensPerSecond.Count != 3 || m.EventsPerSecond.Count != 4 {
		t.Errorf("rates: tokens/s over %d requests, events/s over %d; want 3 and 4", m.TokensPerSecond.Count, m.EventsPerSecond.Count)
	}

	res := BuildScenario(ScenarioInput{Name: "r", Aggregate: agg, Checks: []Check{
		{Name: "tpe", Rule: &Rule{Metric: "request_tokens_per_event", Op: "<=", Limit: 1, Needs: []Evidence{EvidenceRequest}}},
		{Name: "unterminated", Rule: &Rule{Metric: "requests_unterminated", Op: "<=", Limit: 0, Needs: []Evidence{EvidenceRequest}}},
		{Name: "goodput", Rule: &Rule{Metric: "goodput", Op: ">=", Limit: 0.2, Needs: []Evidence{EvidenceRequest}}},
		{Name: "rate", Rule: &Rule{Metric: "request_rate_ratio", Op: ">=", Limit: 0.8, Needs: []Evidence{EvidenceRequest}}},
	}})
	want := map[string]Verdict{"tpe": VerdictFail, "unterminated": VerdictFail, "goodput": VerdictPass, "rate": VerdictPass}
	for _, c := range res.Checks {
		if c.Verdict != want[c.Name] {
			t.Errorf("%s: %s (%s; %s), want %s", c.Name, c.Verdict, c.Measured, c.Detail, want[c.Name])
		}
	}
	var buf bytes.Buffer
	if err := Table(&buf, &Result{Scenarios: []ScenarioResult{res}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Request latencies", "time to first token", "goodput", "20.0% (1 of 5"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
	for format, want := range map[string]string{"junit": "requests 5 (sent 4;", "html": "Request latencies", "markdown": "gap between content events"} {
		render, _ := RendererFor(format)
		var b bytes.Buffer
		if err := render(&b, &Result{Scenarios: []ScenarioResult{res}}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s output lacks %q", format, want)
		}
	}
}

// No request records: every request rule is n/a, never a pass on nothing.
func TestRequestRulesWithoutRequestsAreNA(t *testing.T) {
	agg, _ := NewAggregate(AggregateConfig{})
	dropped, _ := NewAggregate(AggregateConfig{})
	dropped.AddRequest(runner.RequestRecord{Kind: runner.RequestEnd, TTHeaders: -1, TTFT: -1, TTLast: -1, E2E: -1, Usage: -1, End: runner.EndDropped})
	for _, a := range []*Aggregate{agg, dropped} {
		res := BuildScenario(ScenarioInput{Name: "r", Aggregate: a, Checks: []Check{
			{Name: "unterminated", Rule: &Rule{Metric: "requests_unterminated", Op: "<=", Limit: 0, Needs: []Evidence{EvidenceRequest}}},
			{Name: "ttft", Rule: &Rule{Metric: "request_ttft_p99", Op: "<=", Limit: 1000}},
		}})
		for _, c := range res.Checks {
			if c.Verdict != VerdictNotApplicable {
				t.Errorf("%s: %s (%s), want n/a", c.Name, c.Verdict, c.Detail)
			}
		}
	}
}

// Shards merge exactly: the merged figures are those of one aggregate fed every record,
// and the JSON round trip keeps them.
func TestRequestMetricsMerge(t *testing.T) {
	whole, _ := NewAggregate(AggregateConfig{})
	parts := [2]*Aggregate{}
	for i := range parts {
		parts[i], _ = NewAggregate(AggregateConfig{})
	}
	for n := range 40 {
		rs := requestRecords(n, time.Duration(20+n)*time.Millisecond, time.Duration(1+n%7)*time.Millisecond, 3+n%5, int64(3+n%5), runner.EndTerminated, time.Duration(n)*time.Millisecond)
		for _, r := range rs {
			whole.AddRequest(r)
			parts[n%2].AddRequest(r)
		}
	}
	var shards []*Result
	for i, p := range parts {
		p.AddRequestRun(runner.RequestRun{ScheduledRate: 5, AchievedRate: 4})
		s := BuildScenario(ScenarioInput{Name: "r", Aggregate: p})
		r := &Result{SchemaVersion: SchemaVersion, Shard: &Shard{Index: i, Count: 2}, Scenarios: []ScenarioResult{s}}
		shards = append(shards, jsonRoundTrip(t, r))
	}
	merged, err := Merge(shards)
	if err != nil {
		t.Fatal(err)
	}
	got := merged.Scenarios[0].Metrics.Requests
	want := whole.Metrics().Requests
	if got.Requests != want.Requests || got.ContentEvents != want.ContentEvents || got.ScheduledRate != 10 || got.AchievedRate != 8 {
		t.Errorf("merged counts %d %d rates %v %v", got.Requests, got.ContentEvents, got.ScheduledRate, got.AchievedRate)
	}
	for _, d := range requestDurations() {
		g, w := d.get(got), d.get(want)
		wh, _ := w.Percentile(99)
		if g.Count != w.Count || g.MaxMS != w.MaxMS {
			t.Errorf("%s: count %d max %v, want %d %v", d.name, g.Count, g.MaxMS, w.Count, w.MaxMS)
		}
		if gp, _ := g.Percentile(99); gp != wh {
			t.Errorf("%s: merged p99 %v, one histogram's %v", d.name, gp, wh)
		}
	}
	if got.EventsPerRequest.P99 != want.EventsPerRequest.P99 || got.EventsPerRequest.Count != want.EventsPerRequest.Count {
		t.Errorf("events per request: %+v vs %+v", got.EventsPerRequest, want.EventsPerRequest)
	}
	// Different SLOs do not merge.
	other, _ := NewAggregate(AggregateConfig{})
	_ = other.SetRequestSLO(RequestSLO{TTFT: time.Second})
	other.AddRequest(requestRecords(0, time.Millisecond, time.Millisecond, 2, 2, runner.EndTerminated, 0)[2])
	s := BuildScenario(ScenarioInput{Name: "r", Aggregate: other})
	if _, err := Merge([]*Result{shards[0], {SchemaVersion: SchemaVersion, Shard: &Shard{Index: 1, Count: 2}, Scenarios: []ScenarioResult{s}}}); err == nil {
		t.Error("shards with different SLOs merged")
	}
}
