package report

import (
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestStreamsOpenOnlyOnAnEventStreamHead: attempts count as opened only with a 200
// text/event-stream head; the others are counted by why they did not open.
func TestStreamsOpenOnlyOnAnEventStreamHead(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{Start: t0})
	at := t0
	add := func(r runner.Record) { at = at.Add(time.Millisecond); r.Time = at; a.Add(&r) }
	for st := range 7 {
		add(runner.Record{Kind: runner.RecordOpened, Stream: st})
	}
	add(runner.Record{Kind: runner.RecordError, Stream: 0, Class: runner.ErrDial, BeforeHead: true})
	add(runner.Record{Kind: runner.RecordError, Stream: 1, Class: runner.ErrTimeout, BeforeHead: true})
	add(runner.Record{Kind: runner.RecordError, Stream: 2, Class: runner.ErrHeadTooLarge, BeforeHead: true})
	add(runner.Record{Kind: runner.RecordHeaders, Stream: 3, Status: 204})
	add(runner.Record{Kind: runner.RecordHeaders, Stream: 4, Status: 500})
	add(runner.Record{Kind: runner.RecordError, Stream: 4, Class: runner.ErrStatus})
	add(runner.Record{Kind: runner.RecordHeaders, Stream: 5, Status: 200, ContentType: "text/plain"})
	add(runner.Record{Kind: runner.RecordHeaders, Stream: 6, Status: 200, ContentType: "text/event-stream", Accepted: true, FirstAccepted: true})
	// A later attempt of the same stream opens it again: one stream, two opens.
	add(runner.Record{Kind: runner.RecordOpened, Stream: 6, Attempt: 1})
	add(runner.Record{Kind: runner.RecordHeaders, Stream: 6, Attempt: 1, Status: 200, Accepted: true})
	m := a.Metrics()
	if m.Started != 7 || m.Streams != 1 || m.Opens != 2 || m.Heads != 5 || m.Attempts != 8 {
		t.Errorf("started %d streams %d opens %d heads %d attempts %d; want 7 1 2 5 8", m.Started, m.Streams, m.Opens, m.Heads, m.Attempts)
	}
	want := map[string]int64{"dial": 1, "timeout": 1, "head-too-large": 1, "status-204": 1, "status-500": 1, "content-type": 1}
	for k, v := range want {
		if m.NotOpened[k] != v {
			t.Errorf("not opened %s = %d, want %d (%v)", k, m.NotOpened[k], v, m.NotOpened)
		}
	}
	if len(m.NotOpened) != len(want) {
		t.Errorf("not opened %v, want exactly %v", m.NotOpened, want)
	}
}

// TestRuleWithoutEvidenceIsNA: a rule whose evidence is missing is n/a with the
// reason, never a pass on "0 of 0"; with the evidence it judges.
func TestRuleWithoutEvidenceIsNA(t *testing.T) {
	empty := mustAggregate(t, AggregateConfig{Start: t0})
	empty.Add(&runner.Record{Kind: runner.RecordOpened, Time: t0})
	empty.Add(&runner.Record{Kind: runner.RecordHeaders, Time: t0, Status: 204})
	s := BuildScenario(ScenarioInput{
		Name: "x", Start: t0, End: t0.Add(time.Second), Requested: RequestedLoad{Streams: 1}, Aggregate: empty,
		Checks: []Check{
			{Name: "lost", Rule: &Rule{Metric: "missing_ids", Op: "<=", Limit: 0, Needs: []Evidence{EvidenceEvent}}},
			{Name: "errors", Rule: &Rule{Metric: "errors", Op: "<=", Limit: 0, Needs: []Evidence{EvidenceHead}}},
			{Name: "server", Rule: &Rule{Metric: "errors", Op: "<=", Limit: 0, Needs: []Evidence{EvidenceServer}}},
			{Name: "opened", Rule: &Rule{Metric: "unopened_streams", Op: "<=", Limit: 0}},
		},
	})
	got := map[string]Check{}
	for _, c := range s.Checks {
		got[c.Name] = c
	}
	if c := got["lost"]; c.Verdict != VerdictNotApplicable || !strings.Contains(c.Detail, "no stream opened") || !strings.Contains(c.Detail, "status-204 1") {
		t.Errorf("lost ids without events: %s (%q)", c.Verdict, c.Detail)
	}
	if c := got["server"]; c.Verdict != VerdictNotApplicable || !strings.Contains(c.Detail, "metrics") {
		t.Errorf("server rule without a probe: %s (%q)", c.Verdict, c.Detail)
	}
	if c := got["errors"]; c.Verdict != VerdictPass {
		t.Errorf("errors with a head: %s (%q)", c.Verdict, c.Detail)
	}
	if c := got["opened"]; c.Verdict != VerdictFail || !strings.Contains(c.Detail, "0 of 1 streams opened") {
		t.Errorf("unopened streams: %s %s (%q)", c.Verdict, c.Measured, c.Detail)
	}
	na := BuildScenario(ScenarioInput{Name: "y", Start: t0, End: t0, Aggregate: empty,
		Measures: []Measure{{Name: "stalled", Of: 0, Merge: MergeSum}},
		Checks:   []Check{{Name: "stalled", Rule: &Rule{Metric: "measure.stalled", Op: "<=", Limit: 0}}}})
	if c := na.Checks[0]; c.Verdict != VerdictNotApplicable || na.Verdict != VerdictNotApplicable {
		t.Errorf("a measure over nothing examined: %s, scenario %s; want n/a", c.Verdict, na.Verdict)
	}
	for _, bad := range []Rule{{Metric: "nope", Op: "<="}, {Metric: "errors", Op: "~"}, {Metric: "errors", Op: "<=", Needs: []Evidence{"vibes"}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("rule %+v validated", bad)
		}
	}
	if err := (Rule{Metric: "not_opened.dial", Op: "<=", Needs: []Evidence{EvidenceOpened}}).Validate(); err != nil {
		t.Errorf("good rule: %v", err)
	}
}

// TestVerdictNeedsAJudgedCheck: a scenario passes only with a judged check and none
// failed; with nothing judged it is n/a, and so is the run.
func TestVerdictNeedsAJudgedCheck(t *testing.T) {
	sc := func(checks ...Check) ScenarioResult {
		s := ScenarioResult{Name: "s", Checks: checks}
		s.Evaluate()
		return s
	}
	pass := Check{Name: "a", Verdict: VerdictPass}
	na := Check{Name: "b", Verdict: VerdictNotApplicable, Detail: "needs metrics"}
	fail := Check{Name: "c", Verdict: VerdictFail}
	for _, tc := range []struct {
		s    ScenarioResult
		want Verdict
	}{
		{sc(), VerdictNotApplicable},
		{sc(na), VerdictNotApplicable},
		{sc(na, pass), VerdictPass},
		{sc(na, fail), VerdictFail},
	} {
		if tc.s.Verdict != tc.want {
			t.Errorf("%+v: %s, want %s", tc.s.Checks, tc.s.Verdict, tc.want)
		}
	}
	r := &Result{Scenarios: []ScenarioResult{sc(pass), sc(na)}}
	r.Evaluate()
	if r.Verdict != VerdictNotApplicable {
		t.Errorf("run with an n/a scenario: %s", r.Verdict)
	}
	if un := r.Unjudged(); len(un) != 1 || un[0] != "s: needs metrics" || r.NotApplicable() != 1 {
		t.Errorf("unjudged %q, n/a checks %d", un, r.NotApplicable())
	}
	r = &Result{Scenarios: []ScenarioResult{sc(pass), sc(na, fail)}}
	r.Evaluate()
	if r.Verdict != VerdictFail {
		t.Errorf("run with a failed scenario: %s", r.Verdict)
	}
	r = &Result{}
	r.Evaluate()
	if r.Verdict != VerdictNotApplicable {
		t.Errorf("empty run: %s", r.Verdict)
	}
}
