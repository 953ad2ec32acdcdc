package cli

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

var reportT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// runReportCmd runs one sseharness invocation through Main.
func runReportCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(context.Background(), args, env)
	return code, out.String(), errb.String()
}

// reportResultSpec shapes a synthetic result: streams x events with the given delivery
// latency and lost ids, optionally as shard index/count.
type reportResultSpec struct {
	streams, events int
	latency         time.Duration
	missing         int64
	errors          int
	failCheck       bool
	shard           *report.Shard
}

// writeReportResult builds a result from runner records and saves it as name in dir.
func writeReportResult(t *testing.T, dir, name string, spec reportResultSpec) string {
	t.Helper()
	agg, err := report.NewAggregate(report.AggregateConfig{Start: reportT0})
	if err != nil {
		t.Fatal(err)
	}
	for st := 0; st < spec.streams; st++ {
		if spec.shard != nil && st%spec.shard.Count != spec.shard.Index {
			continue
		}
		at := reportT0.Add(time.Duration(st) * time.Millisecond)
		agg.Add(&runner.Record{Kind: runner.RecordOpened, Stream: st, Time: at, Scheduled: at})
		agg.Add(&runner.Record{Kind: runner.RecordHeaders, Stream: st, Time: at, Status: 200, Proto: "HTTP/1.1", Dial: time.Millisecond, TLS: -1, TTHeaders: time.Millisecond, Waited: -1})
		for e := 0; e < spec.events; e++ {
			r := runner.Record{Kind: runner.RecordEvent, Stream: st, Time: at.Add(time.Duration(e+1) * 100 * time.Millisecond),
				Latency: spec.latency + time.Duration(e)*time.Microsecond, Gap: -1, TTFirst: -1, Bytes: 20}
			if e == 0 {
				r.TTFirst = 50 * time.Millisecond
			}
			if e == 1 && int64(st) < spec.missing {
				r.Missing = 1
			}
			agg.Add(&r)
		}
		if st < spec.errors {
			agg.Add(&runner.Record{Kind: runner.RecordError, Stream: st, Time: at.Add(2 * time.Second), Class: runner.ErrRead})
		}
		agg.Add(&runner.Record{Kind: runner.RecordClosed, Stream: st, Time: at.Add(3 * time.Second), Reason: runner.CloseStopped})
	}
	verdict := report.VerdictPass
	if spec.failCheck {
		verdict = report.VerdictFail
	}
	res := &report.Result{
		HarnessVersion: "test", Target: "http://127.0.0.1:9/", Start: reportT0, End: reportT0.Add(5 * time.Second),
		Shard: spec.shard,
		Scenarios: []report.ScenarioResult{report.BuildScenario(report.ScenarioInput{
			Name: "resume", Description: "resume with Last-Event-ID", Start: reportT0, End: reportT0.Add(5 * time.Second),
			Requested: report.RequestedLoad{Streams: spec.streams}, Aggregate: agg,
			Checks: []report.Check{
				{Name: "no-lost-ids", Rule: &report.Rule{Metric: "missing_ids", Op: "<=", Limit: 0}},
				{Name: "in-order", Verdict: verdict, Threshold: "0", Measured: "0"},
			},
		})},
	}
	res.Evaluate()
	path := filepath.Join(dir, name)
	if err := report.Save(path, res); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportCommandFormats(t *testing.T) {
	dir := t.TempDir()
	file := writeReportResult(t, dir, "r.json", reportResultSpec{streams: 20, events: 5, latency: 2 * time.Millisecond})
	for _, c := range []struct {
		format string
		want   []string
	}{
		{"table", []string{"Verdicts", "resume", "delivery latency", "no-lost-ids"}},
		{"markdown", []string{"# sseharness result", "| scenario | verdict | failed checks |"}},
		{"junit", []string{"<testsuites", `<testsuite name="resume"`, `<testcase name="no-lost-ids"`}},
		{"html", []string{"<!DOCTYPE html>", "<svg", "Delivery latency distribution"}},
		{"json", []string{`"schema_version": 2`}},
	} {
		// The flag after the file works too.
		code, stdout, stderr := runReportCmd(t, "report", file, "--format", c.format)
		if code != ExitOK || stderr != "" {
			t.Errorf("%s: exit %d, stderr %q", c.format, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: output lacks %q", c.format, w)
			}
		}
	}
	out := filepath.Join(dir, "junit.xml")
	code, stdout, _ := runReportCmd(t, "report", "--format=junit", "-o", out, file)
	if code != ExitOK || stdout != "" {
		t.Fatalf("--out: exit %d, stdout %q", code, stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, new(struct{})); err != nil {
		t.Errorf("junit file is not XML: %v", err)
	}
}

func TestReportCommandExitFollowsVerdict(t *testing.T) {
	dir := t.TempDir()
	failing := writeReportResult(t, dir, "f.json", reportResultSpec{streams: 5, events: 3, latency: time.Millisecond, missing: 2})
	code, stdout, _ := runReportCmd(t, "report", failing)
	if code != ExitFailed || !strings.Contains(stdout, "FAIL") {
		t.Errorf("failing result: exit %d", code)
	}
}

func TestReportCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	good := writeReportResult(t, dir, "r.json", reportResultSpec{streams: 2, events: 1, latency: time.Millisecond})
	malformed := filepath.Join(dir, "bad.json")
	os.WriteFile(malformed, []byte(`{"schema_version": 1, "scenarios": [`), 0o644)
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"report", filepath.Join(dir, "absent.json")}, "does not exist", ExitUsage},
		{[]string{"report", malformed}, "not valid JSON", ExitUsage},
		{[]string{"report", good, "--format", "pdf"}, "unknown format", ExitUsage},
		{[]string{"report"}, "want exactly one result FILE.json", ExitUsage},
		{[]string{"report", good, good}, "want exactly one", ExitUsage},
		{[]string{"report", good, "--out", filepath.Join(dir, "no", "such", "dir", "x.txt")}, "no such file", ExitHarness},
	}
	for _, c := range cases {
		code, _, stderr := runReportCmd(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
		if c.code == ExitUsage && strings.Contains(c.want, "JSON") || strings.Contains(c.want, "exist") {
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("%v: %d lines on stderr, want one: %q", c.args, n+1, stderr)
			}
		}
	}
}

func TestReportCommandHelp(t *testing.T) {
	code, _, stderr := runReportCmd(t, "report", "-h")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"-format", `(default "table")`, "-out", "merge OUT.json SHARD.json", "Exit status"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

func TestReportMergeCommand(t *testing.T) {
	dir := t.TempDir()
	var shards []string
	for i := 0; i < 3; i++ {
		shards = append(shards, writeReportResult(t, dir, fmt.Sprintf("s%d.json", i),
			reportResultSpec{streams: 30, events: 4, latency: 3 * time.Millisecond, shard: &report.Shard{Index: i, Count: 3}}))
	}
	whole, err := report.Load(writeReportResult(t, dir, "whole.json", reportResultSpec{streams: 30, events: 4, latency: 3 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "merged.json")
	code, stdout, stderr := runReportCmd(t, "report", "merge", out, shards[2], shards[0], shards[1])
	if code != ExitOK || !strings.Contains(stderr, "merged 3 shard results") || !strings.Contains(stdout, "resume") {
		t.Fatalf("merge: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	merged, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	w, m := whole.Scenarios[0].Metrics, merged.Scenarios[0].Metrics
	if m.Streams != w.Streams || m.Events != w.Events || m.Bytes != w.Bytes || m.Latency.Count != w.Latency.Count || merged.MergedShards != 3 {
		t.Errorf("merged streams/events/bytes/latencies %d/%d/%d/%d, whole %d/%d/%d/%d", m.Streams, m.Events, m.Bytes, m.Latency.Count, w.Streams, w.Events, w.Bytes, w.Latency.Count)
	}
	// The merged file renders like any result.
	if code, stdout, _ := runReportCmd(t, "report", out); code != ExitOK || !strings.Contains(stdout, "merged from 3 shards") {
		t.Errorf("render merged: exit %d\n%s", code, stdout)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "merge", out, shards[0], shards[1]}, "shard 2/3 is missing"},
		{[]string{"report", "merge", out, shards[0], filepath.Join(dir, "absent.json")}, "does not exist"},
		{[]string{"report", "merge", out}, "at least one SHARD.json"},
		{[]string{"report", "merge", shards[0], shards[0], shards[1], shards[2]}, "would be overwritten"},
	} {
		code, _, stderr := runReportCmd(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args[2:], code, stderr, c.want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	env := &Env{Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}
	fs := newFlagSet(env, "x", "", "")
	f := fs.String("format", "", "")
	pos, _, ok := parseInterspersed(fs, []string{"a.json", "--format", "html", "b.json", "--", "--format"})
	if !ok || *f != "html" || strings.Join(pos, " ") != "a.json b.json --format" {
		t.Errorf("positional %q format %q ok %v", pos, *f, ok)
	}
}

// TestReportCommandValidatesFiles: report and report merge refuse result files with an
// unknown verdict or level, or over the size limit, with exit 2 and one line naming the
// file and the field; nothing is rendered and no merged file is written.
func TestReportCommandValidatesFiles(t *testing.T) {
	dir := t.TempDir()
	good := writeReportResult(t, dir, "r.json", reportResultSpec{streams: 4, events: 2, latency: time.Millisecond})
	maybe := editResult(t, good, "maybe.json", func(d map[string]any) { d["verdict"] = "maybe" })
	scMaybe := editResult(t, good, "sc.json", func(d map[string]any) { scenario0(d)["verdict"] = "passed" })
	level := editResult(t, good, "level.json", func(d map[string]any) {
		scenario0(d)["checks"].([]any)[1].(map[string]any)["level"] = "OPTIONAL"
	})
	st, err := os.Stat(good)
	if err != nil {
		t.Fatal(err)
	}
	var shards []string
	for i := 0; i < 2; i++ {
		shards = append(shards, writeReportResult(t, dir, fmt.Sprintf("s%d.json", i),
			reportResultSpec{streams: 4, events: 2, latency: time.Millisecond, shard: &report.Shard{Index: i, Count: 2}}))
	}
	badShard := editResult(t, shards[1], "s1-bad.json", func(d map[string]any) {
		scenario0(d)["checks"].([]any)[1].(map[string]any)["verdict"] = "maybe"
	})
	merged := filepath.Join(dir, "merged.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", maybe}, `maybe.json is invalid: verdict: unknown value "maybe" (known: pass, fail, warn, n/a, error)`},
		{[]string{"report", scMaybe, "--format", "junit"}, `sc.json is invalid: scenarios[0].verdict: unknown value "passed"`},
		{[]string{"report", level}, `level.json is invalid: scenarios[0].checks[1].level: unknown value "OPTIONAL"`},
		{[]string{"report", good, "--max-file-size", fmt.Sprint(st.Size() - 1)}, "r.json is "},
		{[]string{"report", "--max-file-size=1KB", good}, "larger than the limit of 1000 B (raise the limit with --max-file-size)"},
		{[]string{"report", "merge", merged, shards[0], badShard}, `s1-bad.json is invalid: scenarios[0].checks[1].verdict: unknown value "maybe"`},
		{[]string{"report", "merge", "--max-file-size", "1KiB", merged, shards[0], shards[1]}, "s0.json is "},
	} {
		code, stdout, stderr := runReportCmd(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, stdout, stderr, c.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: stderr is not one line: %q", c.args, stderr)
		}
	}
	if _, err := os.Stat(merged); err == nil {
		t.Errorf("a refused merge wrote %s", merged)
	}
	// Raised limits and valid files go through.
	if code, _, stderr := runReportCmd(t, "report", "--max-file-size", fmt.Sprint(st.Size()), good); code != ExitOK {
		t.Errorf("limit = size: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runReportCmd(t, "report", "merge", "--max-file-size", "1MiB", merged, shards[0], shards[1]); code != ExitOK {
		t.Errorf("merge: exit %d, stderr %q", code, stderr)
	}
}
