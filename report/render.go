package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Renderer writes a result in one format. Every write error is returned, never dropped.
type Renderer func(io.Writer, *Result) error

// Formats lists the formats RendererFor knows.
// "table" (and its name "table-full") is every table; "compact" is a line per scenario.
func Formats() []string {
	return []string{"table", "markdown", "junit", "html", "json", "compact", "table-full"}
}

// RendererFor returns the renderer of a format named in Formats.
func RendererFor(format string) (Renderer, error) {
	switch format {
	case "table", "table-full":
		return Table, nil
	case "compact":
		return Compact, nil
	case "markdown", "md":
		return Markdown, nil
	case "junit":
		return JUnit, nil
	case "html":
		return HTML, nil
	case "json":
		return Encode, nil
	}
	return nil, fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats(), ", "))
}

// errWriter remembers the first write error so that renderers can write freely and
// return it once; after an error nothing more is written.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}

// textTable is one table of the text renderings (terminal and markdown).
type textTable struct {
	title  string
	header []string
	rows   [][]string
}

// section is what the text renderings show of one scenario.
type section struct {
	title  string
	lines  []string // notes shown under the title
	tables []textTable
}

// verdictText writes a verdict so that failures stand out in plain text.
func verdictText(v Verdict) string {
	switch v {
	case VerdictFail:
		return "FAIL"
	case VerdictError:
		return "ERROR"
	case "":
		return "n/a"
	}
	return string(v)
}

// checkVerdictText writes a failed check that does not fail its scenario (a SHOULD or
// ADVISORY) in lower case, so that only fatal failures shout.
func checkVerdictText(c Check) string {
	if c.Verdict == VerdictFail && !c.Fails() {
		return "fail (" + string(c.Level) + ", not fatal)"
	}
	return verdictText(c.Verdict)
}

// headerLines describe the run.
func headerLines(r *Result) []string {
	lines := []string{
		fmt.Sprintf("sseharness %s, target %s", r.HarnessVersion, r.Target),
		fmt.Sprintf("%s to %s (%s)", r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339), fmtDuration(r.End.Sub(r.Start))),
	}
	if r.Shard != nil {
		lines = append(lines, fmt.Sprintf("shard %d of %d", r.Shard.Index+1, r.Shard.Count))
	}
	if r.MergedShards > 0 {
		lines = append(lines, fmt.Sprintf("merged from %d shards", r.MergedShards))
	}
	if n := r.StartNote(); n != "" {
		lines = append(lines, n)
	}
	if r.Incomplete {
		lines = append(lines, IncompleteNote)
	}
	lines = append(lines, "verdict: "+verdictText(r.Verdict))
	if un := r.Unjudged(); len(un) > 0 {
		lines = append(lines, fmt.Sprintf("not judged: %d of %d scenarios (%s)", len(un), len(r.Scenarios), strings.Join(un, " | ")))
	}
	return lines
}

func verdictTable(r *Result) textTable {
	t := textTable{title: "Verdicts", header: []string{"scenario", "verdict", "failed checks"}}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		failed := strings.Join(s.FailedChecks(), ", ")
		if s.Error != "" {
			failed = "could not run"
		} else if s.Verdict == VerdictNotApplicable {
			failed = "nothing judged"
		}
		t.rows = append(t.rows, []string{s.Name, verdictText(s.Verdict), failed})
	}
	return t
}

func scenarioSection(s *ScenarioResult) section {
	sec := section{title: s.Name}
	if s.Description != "" {
		sec.title += ": " + s.Description
	}
	sec.lines = append(sec.lines, "verdict: "+verdictText(s.Verdict))
	if s.Error != "" {
		sec.lines = append(sec.lines, "could not run: "+s.Error)
	}
	for _, n := range []string{s.RunnerNote(), s.OverlapNote()} {
		if n != "" {
			sec.lines = append(sec.lines, n)
		}
	}
	if len(s.Checks) > 0 {
		sec.tables = append(sec.tables, checksTable(s.Checks))
	}
	if s.Metrics.Records > 0 || s.Load.Requested.Streams > 0 {
		sec.tables = append(sec.tables, loadTable(s), withReconnectRate(countsTable(&s.Metrics), s), durationsTable(&s.Metrics))
	}
	if s.Metrics.Records > 0 || s.Server.Available() {
		sec.tables = append(sec.tables, serverTable(&s.Server))
	}
	sec.tables = append(sec.tables, requestTables(s)...)
	return sec
}

func checksTable(checks []Check) textTable {
	var hasLevel, hasDetail, hasSpec bool
	for _, c := range checks {
		hasLevel = hasLevel || c.Level != ""
		hasDetail = hasDetail || c.Detail != ""
		hasSpec = hasSpec || c.Spec != ""
	}
	t := textTable{title: "Checks", header: []string{"check"}}
	if hasLevel {
		t.header = append(t.header, "level")
	}
	t.header = append(t.header, "threshold", "measured", "verdict")
	if hasDetail {
		t.header = append(t.header, "detail")
	}
	if hasSpec {
		t.header = append(t.header, "spec")
	}
	for _, c := range checks {
		row := []string{c.Name}
		if hasLevel {
			row = append(row, string(c.Level))
		}
		v := checkVerdictText(c)
		if c.Merged {
			v += " (merged)"
		}
		row = append(row, c.Threshold, c.Measured, v)
		if hasDetail {
			row = append(row, c.Detail)
		}
		if hasSpec {
			row = append(row, c.Spec)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

func loadTable(s *ScenarioResult) textTable {
	req, ach := s.Load.Requested, s.Load.Achieved
	orNA := func(ok bool, v string) string {
		if !ok {
			return "n/a"
		}
		return v
	}
	rate := "at once"
	if req.OpenRate > 0 {
		rate = fmtNumber(req.OpenRate) + "/s"
	}
	t := textTable{title: "Load", header: []string{"load", "requested", "achieved"}, rows: [][]string{
		{"streams", strconv.Itoa(req.Streams), strconv.FormatInt(ach.Streams, 10)},
		{"open rate", rate, orNA(ach.OpenRate > 0, fmtNumber(ach.OpenRate)+"/s")},
		{"peak open", "", strconv.FormatInt(ach.PeakOpen, 10)},
		{"start lag p99 / max", "", orNA(s.Metrics.StartLag.Count > 0, fmtMS(ach.StartLagP99MS)+" / "+fmtMS(ach.StartLagMaxMS))},
	}}
	if req.Browsers > 0 {
		t.rows = append(t.rows, []string{"browsers", strconv.Itoa(req.Browsers), ""})
	}
	if req.HoldMS > 0 {
		t.rows = append(t.rows, []string{"hold", fmtMS(req.HoldMS), ""})
	}
	if req.Note != "" {
		t.rows = append(t.rows, []string{"note", req.Note, ""})
	}
	return t
}

// breakdown formats a map of counts as "a 3, b 1", largest first.
func breakdown(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "(none)"
		}
		parts[i] = name + " " + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, ", ")
}

func countsTable(m *Metrics) textTable {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	errs := n(m.ErrorTotal())
	if b := breakdown(m.Errors); b != "" {
		errs += " (" + b + ")"
	}
	rows := [][]string{{"streams", n(m.Streams)}}
	if b := breakdown(m.NotOpened); b != "" {
		rows = append(rows, []string{"attempts not opened", b})
	}
	rows = append(rows, idModelRows(m)...)
	return textTable{title: "Counts", header: []string{"metric", "value"}, rows: append(rows, [][]string{
		{"attempts", n(m.Attempts)},
		{"events", n(m.Events)},
		{"comments", n(m.Comments)},
		{"bytes", fmtBytes(float64(m.Bytes))},
		{"reconnects", n(m.Reconnects)},
		{"missing ids", n(m.MissingIDs)},
		{"duplicated ids", n(m.DuplicateIDs)},
		{"out-of-order ids", n(m.OutOfOrderIDs)},
		{"duplicate senders", n(m.DuplicateSenders)},
		{"errors", errs},
		{"close reasons", breakdown(m.CloseReasons)},
		{"statuses", breakdown(m.Statuses)},
		{"protocols", breakdown(m.Protocols)},
	}...)}
}

func durationsTable(m *Metrics) textTable {
	t := textTable{title: "Durations", header: durationHeader}
	for _, d := range durationMetrics() {
		if d.name == "mark_latency" && m.MarkLatency.Count == 0 {
			continue // shown only in publish-driven runs
		}
		t.rows = append(t.rows, durationRow(d.label, d.get(m)))
	}
	return t
}

var durationHeader = []string{"duration", "samples", "p50", "p90", "p99", "max", "percentiles"}

// durationRow is a distribution's row of a durations table, n/a without samples.
func durationRow(label string, s *DurationStats) []string {
	if s.Count == 0 {
		return []string{label, "0", "n/a", "n/a", "n/a", "n/a", ""}
	}
	src := "exact"
	if !s.Exact {
		src = "histogram ±1%"
	}
	return []string{label, strconv.FormatUint(s.Count, 10), fmtMS(s.P50MS), fmtMS(s.P90MS), fmtMS(s.P99MS), fmtMS(s.MaxMS), src}
}

// serverValue formats a server figure; memory in bytes, others as numbers.
func serverValue(name string, v *float64) string {
	if v == nil {
		return "n/a"
	}
	if strings.HasSuffix(name, "_bytes") {
		return fmtBytes(*v)
	}
	return fmtNumber(*v)
}

func serverTable(f *ServerFigures) textTable {
	t := textTable{title: "Server", header: []string{"server", "baseline", "peak", "after drain", "per stream"}}
	if f.Note != "" {
		t.title += " (" + f.Note + ")"
	}
	for _, m := range f.Metrics {
		t.rows = append(t.rows, []string{m.Name, serverValue(m.Name, m.Baseline), serverValue(m.Name, m.Peak),
			serverValue(m.Name, m.AfterDrain), serverValue(m.Name, m.PerStream)})
	}
	return t
}

// idModelRows are the counts of id models, publish-driven marks and quick reconnects,
// shown when there is any (issue 11).
func idModelRows(m *Metrics) [][]string {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	var rows [][]string
	if m.OpaqueIDs+m.IDResets+m.IDJumps > 0 {
		rows = append(rows, []string{"numeric ids", n(m.NumericIDs)}, []string{"opaque ids", n(m.OpaqueIDs)},
			[]string{"id resets", n(m.IDResets)}, []string{"id jumps", n(m.IDJumps) + " (" + n(m.JumpedIDs) + " ids skipped)"})
	}
	if m.Published+m.PublishErrors > 0 {
		rows = append(rows, []string{"marks published", n(m.Published) + " (" + n(m.PublishErrors) + " failed)"},
			[]string{"marks received", n(m.MarkEvents)}, []string{"marks lost", n(m.MarksLost)},
			[]string{"marks repeated", n(m.MarkDuplicates)}, []string{"marks late", n(m.MarksOutOfOrder)})
	}
	if m.QuickEnds > 0 {
		rows = append(rows, []string{"quick reconnects", n(m.QuickEnds)})
	}
	return rows
}
