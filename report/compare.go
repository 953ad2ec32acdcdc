package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Gate limits how much a metric may get worse from a base result to a new one, in
// percent of the base value. "Worse" is up for latencies, errors and lost ids, down for
// streams and events. A limit of 0 allows no worsening at all.
//
// A base of 0 is special: relative change is undefined, so a new value of 0 is no change
// and any other value is an infinite change, a regression for every limit when it goes
// the bad way (for example errors 0 -> 1). A gated metric with a value in the base and
// none in the new result (no samples, server figure n/a) has lost its evidence and
// regresses; one without a value in the base is not judged.
type Gate struct {
	Metric           string
	MaxRegressionPct float64
}

// DefaultGates are the gates compare applies unless overridden: p99 delivery latency and
// p99 time to first event may worsen by 10%; errors, lost ids and duplicate senders may
// not increase at all.
func DefaultGates() []Gate {
	return []Gate{
		{"latency_p99", 10},
		{"ttfe_p99", 10},
		{"errors", 0},
		{"missing_ids", 0},
		{"duplicate_senders", 0},
	}
}

// ParseGates reads "METRIC=PCT,METRIC=PCT" (PCT a non-negative number, optionally with
// a trailing %). It reports every problem at once; an unknown metric's error lists the
// known names.
func ParseGates(spec string) ([]Gate, error) {
	var gates []Gate
	var errs []string
	unknown := false
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, pct, ok := strings.Cut(part, "=")
		name, pct = strings.TrimSpace(name), strings.TrimSuffix(strings.TrimSpace(pct), "%")
		if !ok || name == "" {
			errs = append(errs, fmt.Sprintf("%q is not METRIC=PCT", part))
			continue
		}
		if _, found := lookupMetric(name); !found {
			errs = append(errs, fmt.Sprintf("unknown metric %q", name))
			unknown = true
			continue
		}
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Sprintf("%s: %q is not a non-negative percentage", name, pct))
			continue
		}
		gates = append(gates, Gate{Metric: name, MaxRegressionPct: v})
	}
	if len(errs) > 0 {
		msg := strings.Join(errs, "; ")
		if unknown {
			msg += " (known metrics: " + strings.Join(MetricNames(), ", ") + ")"
		}
		return nil, fmt.Errorf("%s", msg)
	}
	return gates, nil
}

// WithGates returns base with each override replacing the gate of the same metric or
// added after them.
func WithGates(base, overrides []Gate) []Gate {
	out := append([]Gate(nil), base...)
	for _, o := range overrides {
		replaced := false
		for i := range out {
			if out[i].Metric == o.Metric {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// comparedMetrics are shown for every scenario in both results, besides gated ones.
func comparedMetrics() []string {
	return []string{
		"streams", "events", "errors", "missing_ids", "duplicate_ids", "out_of_order_ids",
		"duplicate_senders", "reconnects", "connect_p99", "ttfe_p50", "ttfe_p99",
		"latency_p50", "latency_p99", "latency_max", "reconnect_delay_p99",
		"server_goroutines_peak", "server_goroutines_per_stream",
		"server_rss_bytes_peak", "server_rss_bytes_per_stream",
	}
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Rows []ComparisonRow
	// Lost lists what the base has and the new result lacks, each a regression: a
	// scenario absent from the new result or that could not run there, a check of the
	// base absent from the new scenario.
	Lost []string
	// Notes are things not in the rows: scenarios only in the new result, verdicts that
	// changed.
	Notes []string
}

// Regressed reports whether the gate fails: a gated metric regressed or lost its value,
// or the new result lacks something of the base.
func (c Comparison) Regressed() bool {
	return len(c.Lost) > 0 || len(c.Regressions()) > 0
}

// ComparisonRow is one metric of one scenario, base to new.
type ComparisonRow struct {
	Scenario, Metric string
	Base, New        float64
	// BaseOK and NewOK are false when that side has no value (no samples, n/a).
	BaseOK, NewOK bool
	// ChangePct is (New - Base) / Base in percent; ±Inf when Base is 0 and New is not.
	ChangePct float64
	Gated     bool
	LimitPct  float64 // the gate's limit, when Gated
	Regressed bool    // gated and worse than the limit allows, or no value in new while base has one
	unit      unit
	worse     int
}

// Compare compares every scenario present in both results, metric by metric, and marks
// the gated metrics that regressed beyond their limits; what the base has and the new
// result lacks goes to Lost. Unknown gate metrics were rejected by ParseGates; here they
// are ignored. A base without scenarios gives nothing to compare: callers refuse it.
func Compare(base, next *Result, gates []Gate) Comparison {
	var c Comparison
	for _, r := range []struct {
		name string
		res  *Result
	}{{"base", base}, {"new", next}} {
		if r.res.Incomplete {
			c.Notes = append(c.Notes, "the "+r.name+" result is "+IncompleteNote)
		}
	}
	newByName := map[string]*ScenarioResult{}
	for i := range next.Scenarios {
		newByName[next.Scenarios[i].Name] = &next.Scenarios[i]
	}
	seen := map[string]bool{}
	for i := range base.Scenarios {
		b := &base.Scenarios[i]
		seen[b.Name] = true
		n, ok := newByName[b.Name]
		if !ok {
			c.Lost = append(c.Lost, fmt.Sprintf("scenario %s is missing from the new result", b.Name))
			continue
		}
		if b.Verdict != n.Verdict {
			c.Notes = append(c.Notes, fmt.Sprintf("scenario %s: verdict %s -> %s", b.Name, b.Verdict, n.Verdict))
		}
		if n.Verdict == VerdictError && b.Verdict != VerdictError {
			c.Lost = append(c.Lost, fmt.Sprintf("scenario %s could not run in the new result: %s", b.Name, orText(n.Error, "no reason given")))
		}
		c.Lost = append(c.Lost, lostChecks(b, n)...)
		c.Rows = append(c.Rows, compareScenario(b, n, gates)...)
	}
	for i := range next.Scenarios {
		if !seen[next.Scenarios[i].Name] {
			c.Notes = append(c.Notes, fmt.Sprintf("scenario %s is only in the new result", next.Scenarios[i].Name))
		}
	}
	return c
}

// lostChecks names the checks of b that n lacks.
func lostChecks(b, n *ScenarioResult) []string {
	has := map[string]bool{}
	for _, c := range n.Checks {
		has[c.Name] = true
	}
	var lost []string
	for _, c := range b.Checks {
		if !has[c.Name] {
			lost = append(lost, fmt.Sprintf("scenario %s: check %s is missing from the new result", b.Name, c.Name))
			has[c.Name] = true // named once
		}
	}
	return lost
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// msNoiseFloor is the smallest change of a duration metric, in milliseconds, that can
// count as a regression.
const msNoiseFloor = 1.0

func compareScenario(b, n *ScenarioResult, gates []Gate) []ComparisonRow {
	limits := map[string]float64{}
	names := comparedMetrics()
	for _, g := range gates {
		if _, dup := limits[g.Metric]; !dup && !slices.Contains(names, g.Metric) {
			names = append(names, g.Metric)
		}
		limits[g.Metric] = g.MaxRegressionPct
	}
	var rows []ComparisonRow
	for _, name := range names {
		d, found := lookupMetric(name)
		if !found {
			continue
		}
		row := ComparisonRow{Scenario: b.Name, Metric: name, unit: d.unit, worse: d.worse}
		row.Base, row.BaseOK = d.get(b)
		row.New, row.NewOK = d.get(n)
		row.LimitPct, row.Gated = limits[name]
		if !row.BaseOK && !row.NewOK {
			continue
		}
		if !row.Gated && row.BaseOK && row.NewOK && row.Base == 0 && row.New == 0 {
			continue // nothing to say, and ungated
		}
		if row.Gated && row.BaseOK && !row.NewOK {
			row.Regressed = true // the evidence the base had is gone
		}
		if row.BaseOK && row.NewOK {
			row.ChangePct = changePct(row.Base, row.New)
			worse := float64(d.worse)
			if worse == 0 {
				worse = 1 // a gate on a neutral metric limits increases
			}
			row.Regressed = row.Gated && row.ChangePct*worse > row.LimitPct
			if d.unit == unitMS && math.Abs(row.New-row.Base) <= msNoiseFloor {
				// A sub-millisecond move of a millisecond figure is timer and scheduler
				// noise, whatever percentage it makes of a small base.
				row.Regressed = false
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func changePct(base, next float64) float64 {
	switch {
	case base == next:
		return 0
	case base == 0:
		return math.Inf(int(math.Copysign(1, next)))
	}
	return (next - base) / math.Abs(base) * 100
}

// Regressions lists the rows that regressed beyond their gates.
func (c Comparison) Regressions() []ComparisonRow {
	var out []ComparisonRow
	for _, r := range c.Rows {
		if r.Regressed {
			out = append(out, r)
		}
	}
	return out
}

// ChangeText formats the change: +12.3%, -4.00%, 0%, "from 0", n/a.
func (r ComparisonRow) ChangeText() string {
	switch {
	case !r.BaseOK || !r.NewOK:
		return "n/a"
	case math.IsInf(r.ChangePct, 0):
		return "from 0"
	case r.ChangePct == 0:
		return "0%"
	case r.ChangePct > 0:
		return "+" + threeDigits(r.ChangePct) + "%"
	}
	return "-" + threeDigits(-r.ChangePct) + "%"
}

func (r ComparisonRow) value(v float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return r.unit.format(v)
}

// WriteComparison renders c as a terminal table followed by its notes.
func WriteComparison(w io.Writer, c Comparison) error {
	ew := &errWriter{w: w}
	tbl := tablewriter.NewTable(ew,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
	)
	tbl.Header("scenario", "metric", "base", "new", "change", "limit", "result")
	for _, r := range c.Rows {
		limit, result := "", ""
		if r.Gated {
			limit = "+" + fmtNumber(r.LimitPct) + "%"
			if r.worse < 0 {
				limit = "-" + fmtNumber(r.LimitPct) + "%"
			}
			result = "ok"
			switch {
			case r.Regressed && !r.NewOK:
				result = "REGRESSED (no value)"
			case r.Regressed:
				result = "REGRESSED"
			case !r.BaseOK || !r.NewOK:
				result = "n/a"
			}
		}
		if err := tbl.Append(r.Scenario, r.Metric, r.value(r.Base, r.BaseOK), r.value(r.New, r.NewOK), r.ChangeText(), limit, result); err != nil {
			return err
		}
	}
	if err := tbl.Render(); err != nil {
		return err
	}
	for _, l := range c.Lost {
		ew.printf("REGRESSED: %s\n", l)
	}
	for _, n := range c.Notes {
		ew.printf("%s\n", n)
	}
	return ew.err
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
