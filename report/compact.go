package report

import (
	"fmt"
	"io"
	"strings"
)

// Compact renders r for a person at a terminal: one line per scenario (verdict, duration
// and the figures that matter), every failed check in full under its scenario, then the
// run's verdict. Table (and the HTML report and the result file) keep everything else.
func Compact(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	ew.printf("sseharness %s, target %s\n", r.HarnessVersion, r.Target)
	for i := range r.Scenarios {
		writeCompactScenario(ew, &r.Scenarios[i])
	}
	writeCompactVerdict(ew, r)
	return ew.err
}

// CompactScenario writes the compact lines of one scenario, so that a run can print each
// scenario as it ends; CompactVerdict then closes the run.
func CompactScenario(w io.Writer, s *ScenarioResult) error {
	ew := &errWriter{w: w}
	writeCompactScenario(ew, s)
	return ew.err
}

// CompactVerdict writes the run's verdict line of the compact rendering.
func CompactVerdict(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	writeCompactVerdict(ew, r)
	return ew.err
}

// compactNote starts the lines under a scenario's line (failed checks, why it could not
// run or be judged): a mark rather than spaces, so that every line of the output starts
// with a character and a failed check's line can be found by its name at a line start.
const compactNote = "└─ "

// compactNameWidth aligns the verdict column for the scenario names this harness has.
const compactNameWidth = 22

func writeCompactScenario(ew *errWriter, s *ScenarioResult) {
	line := fmt.Sprintf("%-*s %-5s %7s  %s", compactNameWidth, s.Name, verdictText(s.Verdict),
		fmtDuration(s.End.Sub(s.Start)), compactFigures(s))
	ew.printf("%s\n", strings.TrimRight(line, " "))
	if s.Incomplete {
		ew.printf(compactNote + "incomplete: still running, figures so far\n")
	}
	if s.Error != "" {
		ew.printf(compactNote+"could not run: %s\n", oneLine(s.Error))
	}
	for _, c := range s.Checks {
		if c.Verdict != VerdictFail {
			continue
		}
		line := fmt.Sprintf(compactNote+"%s %s: measured %s against %s", checkVerdictText(c), c.Name, orNA(c.Measured), orNA(c.Threshold))
		if c.Detail != "" {
			line += " (" + oneLine(c.Detail) + ")"
		}
		if c.Merged {
			line += " (merged)"
		}
		ew.printf("%s\n", line)
	}
	if s.Verdict == VerdictNotApplicable && !s.Incomplete {
		r := Result{Scenarios: []ScenarioResult{*s}}
		for _, why := range r.Unjudged() {
			ew.printf(compactNote+"not judged: %s\n", oneLine(strings.TrimPrefix(why, s.Name+": ")))
		}
	}
}

// compactFigures are the figures of a scenario a person looks at first: how many streams
// it held against how many it asked for, the events, the delivery latency p99 (or the
// time to first event when nothing was timed), and the errors when there were any.
func compactFigures(s *ScenarioResult) string {
	m := &s.Metrics
	if m.Records == 0 && s.Load.Requested.Streams == 0 {
		return ""
	}
	streams := fmt.Sprintf("streams %d", m.Streams)
	if s.Load.Requested.Streams > 0 {
		streams += fmt.Sprintf("/%d", s.Load.Requested.Streams)
	}
	parts := []string{streams, fmt.Sprintf("events %d", m.Events)}
	switch {
	case m.Latency.Count > 0:
		parts = append(parts, "latency p99 "+fmtMS(m.Latency.P99MS))
	case m.TimeToFirstEvent.Count > 0:
		parts = append(parts, "first event p99 "+fmtMS(m.TimeToFirstEvent.P99MS))
	}
	if n := m.ErrorTotal(); n > 0 {
		parts = append(parts, fmt.Sprintf("errors %d (%s)", n, breakdown(m.Errors)))
	}
	return strings.Join(parts, ", ")
}

func writeCompactVerdict(ew *errWriter, r *Result) {
	counts := map[Verdict]int{}
	for _, s := range r.Scenarios {
		counts[s.Verdict]++
	}
	var parts []string
	for _, v := range verdicts {
		if counts[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[v], verdictText(v)))
		}
	}
	if r.Incomplete {
		ew.printf("%s\n", IncompleteNote)
	}
	line := fmt.Sprintf("verdict: %s (%d scenarios: %s) in %s", verdictText(r.Verdict), len(r.Scenarios), strings.Join(parts, ", "), fmtDuration(r.End.Sub(r.Start)))
	if r.Shard != nil {
		line += fmt.Sprintf(", shard %d of %d", r.Shard.Index+1, r.Shard.Count)
	}
	if r.MergedShards > 0 {
		line += fmt.Sprintf(", merged from %d shards", r.MergedShards)
	}
	ew.printf("%s\n", line)
}

// oneLine keeps a detail on its line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
