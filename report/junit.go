package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit renders r as JUnit XML: a testsuite per scenario, a testcase per check. A check
// that fails its scenario is a <failure> whose message reads "measured X vs threshold
// Y"; an n/a check is <skipped>; a warning or a failed SHOULD/ADVISORY check passes with
// the finding in <system-out>; a scenario that could not run has an <error> testcase.
func JUnit(w io.Writer, r *Result) error {
	doc := junitSuites{Name: "sseharness", junitCounts: junitCounts{Time: seconds(r.End.Sub(r.Start).Seconds())}}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		suite := junitSuite{
			Name:        s.Name,
			junitCounts: junitCounts{Time: seconds(s.End.Sub(s.Start).Seconds())},
			Timestamp:   s.Start.UTC().Format("2006-01-02T15:04:05"),
			Properties: []junitProperty{
				{Name: "description", Value: s.Description},
				{Name: "verdict", Value: string(s.Verdict)},
				{Name: "target", Value: r.Target},
			},
			SystemOut: metricsSummary(s),
		}
		class := "sseharness." + s.Name
		if s.Error != "" {
			suite.Cases = append(suite.Cases, junitCase{Name: "run", Classname: class, Time: "0",
				Error: &junitFailure{Message: s.Error, Type: "error", Text: s.Error}})
			suite.Errors++
		}
		for _, c := range s.Checks {
			tc := junitCase{Name: c.Name, Classname: class, Time: "0"}
			switch {
			case c.Fails():
				tc.Failure = &junitFailure{Message: failureMessage(c), Type: string(c.Verdict), Text: checkText(c)}
				suite.Failures++
			case c.Verdict == VerdictNotApplicable:
				msg := "n/a"
				if c.Detail != "" {
					msg += ": " + c.Detail
				}
				tc.Skipped = &junitSkipped{Message: msg}
				suite.Skipped++
			case c.Verdict != VerdictPass:
				tc.SystemOut = strings.TrimSpace(string(c.Verdict) + levelNote(c) + ": " + failureMessage(c) + "\n" + checkText(c))
			}
			suite.Cases = append(suite.Cases, tc)
		}
		suite.Tests = len(suite.Cases)
		doc.add(suite.junitCounts)
		doc.Suites = append(doc.Suites, suite)
	}
	ew := &errWriter{w: w}
	ew.printf("%s", xml.Header)
	enc := xml.NewEncoder(ew)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	ew.printf("\n")
	return ew.err
}

func levelNote(c Check) string {
	if c.Level == "" {
		return ""
	}
	return " (" + string(c.Level) + ", does not fail the run)"
}

// failureMessage is the one line CI pages show.
func failureMessage(c Check) string {
	measured := c.Measured
	if measured == "" {
		measured = "n/a"
	}
	switch {
	case c.Threshold != "":
		return fmt.Sprintf("measured %s vs threshold %s", measured, c.Threshold)
	case c.Measured != "":
		return "measured " + measured
	case c.Detail != "":
		return c.Detail
	}
	return string(c.Verdict)
}

func checkText(c Check) string {
	var b strings.Builder
	if c.Level != "" {
		fmt.Fprintf(&b, "level: %s\n", c.Level)
	}
	if c.Detail != "" {
		fmt.Fprintf(&b, "detail: %s\n", c.Detail)
	}
	if c.Spec != "" {
		fmt.Fprintf(&b, "spec: %s\n", c.Spec)
	}
	if c.Merged {
		b.WriteString("merged from shards: worst shard verdict\n")
	}
	return b.String()
}

// metricsSummary lists the headline metrics of a scenario for CI logs.
func metricsSummary(s *ScenarioResult) string {
	m := &s.Metrics
	if m.Records == 0 {
		return requestSummary(s)
	}
	var b strings.Builder
	b.WriteString(requestSummary(s))
	fmt.Fprintf(&b, "streams %d, events %d, errors %d, missing ids %d, duplicated ids %d, duplicate senders %d\n",
		m.Streams, m.Events, m.ErrorTotal(), m.MissingIDs, m.DuplicateIDs, m.DuplicateSenders)
	for _, d := range []struct {
		name string
		s    DurationStats
	}{{"delivery latency", m.Latency}, {"time to first event", m.TimeToFirstEvent}} {
		if d.s.Count > 0 {
			fmt.Fprintf(&b, "%s p50 %s p99 %s max %s\n", d.name, fmtMS(d.s.P50MS), fmtMS(d.s.P99MS), fmtMS(d.s.MaxMS))
		}
	}
	return b.String()
}

func seconds(v float64) string {
	if v < 0 {
		v = 0
	}
	return fmt.Sprintf("%.3f", v)
}

type junitSuites struct {
	XMLName xml.Name `xml:"testsuites"`
	Name    string   `xml:"name,attr"`
	junitCounts
	Suites []junitSuite `xml:"testsuite"`
}

// junitCounts are the attributes a suite and the suites share (encoding/xml writes an
// embedded struct's fields as the outer struct's, in place).
type junitCounts struct {
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Skipped  int    `xml:"skipped,attr"`
	Time     string `xml:"time,attr"`
}

// add adds a suite's counts (not its time) to the total.
func (c *junitCounts) add(o junitCounts) {
	c.Tests += o.Tests
	c.Failures += o.Failures
	c.Errors += o.Errors
	c.Skipped += o.Skipped
}

type junitSuite struct {
	Name string `xml:"name,attr"`
	junitCounts
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
	Error     *junitFailure `xml:"error"`
	Skipped   *junitSkipped `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}
