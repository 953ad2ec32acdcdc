package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// cloneResult deep-copies r through its file form.
func cloneResult(t *testing.T, r *Result) *Result {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		t.Fatal(err)
	}
	c, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func findRow(t *testing.T, c Comparison, scenario, metric string) ComparisonRow {
	t.Helper()
	for _, r := range c.Rows {
		if r.Scenario == scenario && r.Metric == metric {
			return r
		}
	}
	t.Fatalf("no row %s/%s", scenario, metric)
	return ComparisonRow{}
}

func TestCompareIdenticalPasses(t *testing.T) {
	base := fixtureResult(t)
	c := Compare(base, cloneResult(t, base), DefaultGates())
	if regs := c.Regressions(); len(regs) != 0 {
		t.Fatalf("identical results regressed: %+v", regs)
	}
	if r := findRow(t, c, "resume", "latency_p99"); !r.Gated || r.ChangePct != 0 || r.LimitPct != 10 {
		t.Errorf("latency row %+v", r)
	}
}

func TestCompareGates(t *testing.T) {
	base := fixtureResult(t)
	p99 := base.Scenarios[0].Metrics.Latency.P99MS
	cases := []struct {
		name      string
		mutate    func(*ScenarioResult)
		gates     []Gate
		metric    string
		regressed bool
	}{
		{"latency within 10%", func(s *ScenarioResult) { s.Metrics.Latency.P99MS = p99 * 1.05 }, DefaultGates(), "latency_p99", false},
		{"latency past 10%", func(s *ScenarioResult) { s.Metrics.Latency.P99MS = p99 * 1.15 }, DefaultGates(), "latency_p99", true},
		{"latency past 10% with a 20% override", func(s *ScenarioResult) { s.Metrics.Latency.P99MS = p99 * 1.15 },
			WithGates(DefaultGates(), []Gate{{"latency_p99", 20}}), "latency_p99", false},
		{"latency better", func(s *ScenarioResult) { s.Metrics.Latency.P99MS = p99 / 2 }, DefaultGates(), "latency_p99", false},
		{"one more error", func(s *ScenarioResult) { s.Metrics.Errors["read"]++ }, DefaultGates(), "errors", true},
		{"one error fewer", func(s *ScenarioResult) { s.Metrics.Errors["read"]-- }, DefaultGates(), "errors", false},
		{"lost ids from 4 to 5", func(s *ScenarioResult) { s.Metrics.MissingIDs++ }, DefaultGates(), "missing_ids", true},
		{"duplicate senders from 0", func(s *ScenarioResult) { s.Metrics.DuplicateSenders = 1 }, DefaultGates(), "duplicate_senders", true},
		{"fewer events, gated at 5%", func(s *ScenarioResult) { s.Metrics.Events = s.Metrics.Events * 9 / 10 },
			[]Gate{{"events", 5}}, "events", true},
		{"more events, gated at 5%", func(s *ScenarioResult) { s.Metrics.Events *= 2 }, []Gate{{"events", 5}}, "events", false},
		{"ttfe past 10%", func(s *ScenarioResult) { s.Metrics.TimeToFirstEvent.P99MS *= 1.2 }, DefaultGates(), "ttfe_p99", true},
		{"latency +50% but within the 1ms noise floor", func(s *ScenarioResult) {
			s.Metrics.Latency.P99MS = 1.5
		}, DefaultGates(), "latency_p99", false},
	}
	for _, tc := range cases {
		b := base
		if strings.Contains(tc.name, "noise floor") {
			b = cloneResult(t, base)
			b.Scenarios[0].Metrics.Latency.P99MS = 1.0
		}
		next := cloneResult(t, b)
		tc.mutate(&next.Scenarios[0])
		c := Compare(b, next, tc.gates)
		row := findRow(t, c, "resume", tc.metric)
		if row.Regressed != tc.regressed {
			t.Errorf("%s: regressed %v, want %v (row %+v)", tc.name, row.Regressed, tc.regressed, row)
		}
		if got := len(c.Regressions()) > 0; got != tc.regressed {
			t.Errorf("%s: %d regressions", tc.name, len(c.Regressions()))
		}
	}
}

func TestCompareFromZeroAndNA(t *testing.T) {
	base := fixtureResult(t)
	next := cloneResult(t, base)
	next.Scenarios[1].Metrics.DuplicateSenders = 0 // 55 -> 0: better
	next.Scenarios[1].Metrics.OutOfOrderIDs = 3    // 0 -> 3: not gated
	c := Compare(base, next, DefaultGates())
	if r := findRow(t, c, "same-id-reconnect", "out_of_order_ids"); !math.IsInf(r.ChangePct, 1) || r.Regressed || r.ChangeText() != "from 0" {
		t.Errorf("ungated 0 -> 3: %+v", r)
	}
	if r := findRow(t, c, "same-id-reconnect", "duplicate_senders"); r.Regressed || r.ChangeText() != "-100%" {
		t.Errorf("55 -> 0: %+v %s", r, r.ChangeText())
	}
	// A gated server figure the base has and the new result lacks has lost its evidence:
	// a regression. The other way round (new evidence) it is shown, never a regression.
	next.Scenarios[0].Server = ServerFigures{}
	gates := WithGates(DefaultGates(), []Gate{{"server_rss_bytes_peak", 0}})
	c = Compare(base, next, gates)
	if r := findRow(t, c, "resume", "server_rss_bytes_peak"); !r.Regressed || r.NewOK || r.ChangeText() != "n/a" || !c.Regressed() {
		t.Errorf("gated server figure lost in new: %+v", r)
	}
	noServer := cloneResult(t, base)
	noServer.Scenarios[0].Server = ServerFigures{}
	c = Compare(noServer, base, gates)
	if r := findRow(t, c, "resume", "server_rss_bytes_peak"); r.Regressed || r.BaseOK || c.Regressed() {
		t.Errorf("gated server figure only in new: %+v", r)
	}
	// Ungated, a figure lost is shown and not judged.
	c = Compare(base, noServer, DefaultGates())
	if r := findRow(t, c, "resume", "server_rss_bytes_peak"); r.Regressed || c.Regressed() {
		t.Errorf("ungated server figure lost in new: %+v", r)
	}
}

// TestCompareLostEvidence: a new result that lacks a scenario, a check or a gated metric
// of the base, or whose scenario could not run, regresses, each named.
func TestCompareLostEvidence(t *testing.T) {
	base := fixtureResult(t)
	cases := []struct {
		name   string
		change func(*Result)
		want   []string // in Lost or in a regressed row "scenario/metric"
	}{
		{"no scenarios at all", func(r *Result) { r.Scenarios = nil }, []string{
			"scenario resume is missing", "scenario same-id-reconnect is missing", "scenario six-connection-limit is missing", "scenario conform is missing"}},
		{"one scenario gone", func(r *Result) { r.Scenarios = r.Scenarios[1:] }, []string{"scenario resume is missing"}},
		{"a check gone", func(r *Result) { r.Scenarios[1].Checks = r.Scenarios[1].Checks[1:] }, []string{"scenario same-id-reconnect: check duplicate-senders is missing"}},
		{"every check gone", func(r *Result) { r.Scenarios[3].Checks = nil }, []string{"scenario conform: check status-200 is missing", "check stop-204 is missing"}},
		{"could not run", func(r *Result) {
			r.Scenarios[0] = ScenarioResult{Name: "resume", Verdict: VerdictError, Error: "dial refused", Checks: r.Scenarios[0].Checks}
		}, []string{"scenario resume could not run in the new result: dial refused", "resume/latency_p99"}},
		{"no events delivered", func(r *Result) { r.Scenarios[0].Metrics.Latency = DurationStats{} }, []string{"resume/latency_p99"}},
	}
	for _, tc := range cases {
		next := cloneResult(t, base)
		tc.change(next)
		c := Compare(base, next, DefaultGates())
		if !c.Regressed() {
			t.Errorf("%s: not a regression: lost %q, rows %+v", tc.name, c.Lost, c.Regressions())
			continue
		}
		got := strings.Join(c.Lost, "\n")
		for _, r := range c.Regressions() {
			got += "\n" + r.Scenario + "/" + r.Metric
			if !r.NewOK && r.ChangeText() != "n/a" {
				t.Errorf("%s: %s/%s change %q", tc.name, r.Scenario, r.Metric, r.ChangeText())
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: regressions %q lack %q", tc.name, got, w)
			}
		}
	}
	// A scenario that could not run in the base either is no loss.
	next := cloneResult(t, base)
	next.Scenarios[2].Error = "another reason"
	if c := Compare(base, next, DefaultGates()); c.Regressed() {
		t.Errorf("error in both: lost %q, rows %+v", c.Lost, c.Regressions())
	}
}

func TestCompareNotes(t *testing.T) {
	base := fixtureResult(t)
	next := cloneResult(t, base)
	next.Scenarios[0].Verdict = VerdictFail
	next.Scenarios = next.Scenarios[:2]
	next.Scenarios = append(next.Scenarios, ScenarioResult{Name: "brand-new"})
	c := Compare(base, next, DefaultGates())
	joined := strings.Join(c.Notes, "\n")
	for _, want := range []string{"resume: verdict pass -> fail", "brand-new is only in the new"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes %q lack %q", joined, want)
		}
	}
	if len(c.Lost) != 2 || !strings.Contains(c.Lost[0], "six-connection-limit is missing") || !strings.Contains(c.Lost[1], "conform is missing") {
		t.Errorf("lost %q, want six-connection-limit and conform", c.Lost)
	}
}

func TestParseGates(t *testing.T) {
	g, err := ParseGates("latency_p99=5, errors=0 ,ttfe_p50=12.5%,errors.dial=0")
	if err != nil {
		t.Fatal(err)
	}
	want := []Gate{{"latency_p99", 5}, {"errors", 0}, {"ttfe_p50", 12.5}, {"errors.dial", 0}}
	if len(g) != len(want) {
		t.Fatalf("%+v", g)
	}
	for i := range want {
		if g[i] != want[i] {
			t.Errorf("gate %d = %+v, want %+v", i, g[i], want[i])
		}
	}
	_, err = ParseGates("latncy_p99=5,errors=-1,events,ttfe_p99=abc")
	if err == nil {
		t.Fatal("bad gates accepted")
	}
	msg := err.Error()
	for _, w := range []string{`unknown metric "latncy_p99"`, `"-1" is not a non-negative`, `"events" is not METRIC=PCT`, `"abc"`, "known metrics: ", "latency_p99"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	merged := WithGates(DefaultGates(), []Gate{{"latency_p99", 20}, {"events", 1}})
	if len(merged) != len(DefaultGates())+1 || merged[0] != (Gate{"latency_p99", 20}) {
		t.Errorf("WithGates %+v", merged)
	}
}

func TestWriteComparison(t *testing.T) {
	base := fixtureResult(t)
	next := cloneResult(t, base)
	next.Scenarios[0].Metrics.Latency.P99MS *= 2
	var buf bytes.Buffer
	if err := WriteComparison(&buf, Compare(base, next, DefaultGates())); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"latency_p99", "+100%", "+10%", "REGRESSED", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("comparison table lacks %q:\n%s", want, out)
		}
	}
	if err := WriteComparison(&failWriter{n: 10}, Compare(base, next, DefaultGates())); err == nil {
		t.Error("write error dropped")
	}
}

func TestCompareNotesIncomplete(t *testing.T) {
	base, next := fixtureResult(t), fixtureResult(t)
	next.Incomplete = true
	c := Compare(base, next, DefaultGates())
	if len(c.Notes) == 0 || !strings.Contains(strings.Join(c.Notes, "\n"), "new result is "+IncompleteNote) {
		t.Errorf("notes %q", c.Notes)
	}
	if c := Compare(base, base, DefaultGates()); strings.Contains(strings.Join(c.Notes, "\n"), "incomplete") {
		t.Errorf("complete results noted incomplete: %q", c.Notes)
	}
}
