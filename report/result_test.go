package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckFails(t *testing.T) {
	cases := []struct {
		c    Check
		want bool
	}{
		{Check{Verdict: VerdictFail}, true},
		{Check{Verdict: VerdictWarn}, false},
		{Check{Verdict: VerdictNotApplicable}, false},
		{Check{Verdict: VerdictPass}, false},
		{Check{Level: LevelMust, Verdict: VerdictFail}, true},
		{Check{Level: LevelShould, Verdict: VerdictFail}, false},
		{Check{Level: LevelAdvisory, Verdict: VerdictFail}, false},
	}
	for _, c := range cases {
		if got := c.c.Fails(); got != c.want {
			t.Errorf("%+v: Fails() = %v, want %v", c.c, got, c.want)
		}
	}
}

func TestVerdicts(t *testing.T) {
	r := fixtureResult(t)
	want := map[string]Verdict{
		"resume":               VerdictPass,
		"same-id-reconnect":    VerdictFail,
		"six-connection-limit": VerdictError,
		"conform":              VerdictPass, // the SHOULD failure and the ADVISORY warning do not fail it
	}
	for _, s := range r.Scenarios {
		if s.Verdict != want[s.Name] {
			t.Errorf("%s: verdict %s, want %s (checks %+v)", s.Name, s.Verdict, want[s.Name], s.Checks)
		}
	}
	if r.Verdict != VerdictFail || r.SchemaVersion != SchemaVersion {
		t.Errorf("run verdict %s schema %d", r.Verdict, r.SchemaVersion)
	}
	if got := r.Scenarios[1].FailedChecks(); !reflect.DeepEqual(got, []string{"duplicate-senders", "old-stream-ended"}) {
		t.Errorf("failed checks %v", got)
	}
	// Only errors: the run is an error; nothing failing: pass; all n/a: n/a scenario.
	r2 := &Result{Scenarios: []ScenarioResult{r.Scenarios[0], r.Scenarios[2]}}
	r2.Evaluate()
	if r2.Verdict != VerdictError {
		t.Errorf("pass+error run: %s", r2.Verdict)
	}
	na := ScenarioResult{Checks: []Check{{Verdict: VerdictNotApplicable}}}
	na.Evaluate()
	if na.Verdict != VerdictNotApplicable {
		t.Errorf("all-n/a scenario: %s", na.Verdict)
	}
}

func TestRuleChecks(t *testing.T) {
	r := fixtureResult(t)
	resume := r.Scenarios[0]
	byName := map[string]Check{}
	for _, c := range resume.Checks {
		byName[c.Name] = c
	}
	if c := byName["no-lost-ids"]; c.Verdict != VerdictPass || c.Measured != "4" || c.Threshold != "<= 4" {
		t.Errorf("no-lost-ids %+v", c)
	}
	if c := byName["tls-handshake"]; c.Verdict != VerdictNotApplicable || c.Measured != "n/a" {
		t.Errorf("tls without samples %+v, want n/a", c)
	}
	if c := byName["latency-p99"]; c.Verdict != VerdictPass || !strings.HasSuffix(c.Measured, "ms") || c.Threshold != "<= 50.0ms" {
		t.Errorf("latency-p99 %+v", c)
	}
	// The same rules fail when the limit is below the measured value.
	s := resume
	s.Checks = []Check{
		{Name: "lost", Rule: &Rule{Metric: "missing_ids", Op: "<", Limit: 4}},
		{Name: "p99", Rule: &Rule{Metric: "latency_p99", Op: "<=", Limit: 0.001}},
		{Name: "streams", Rule: &Rule{Metric: "streams", Op: ">=", Limit: 121}},
		{Name: "typo", Rule: &Rule{Metric: "latncy_p99", Op: "<=", Limit: 1}},
		{Name: "badop", Rule: &Rule{Metric: "events", Op: "~", Limit: 1}},
		{Name: "class", Rule: &Rule{Metric: "errors.read", Op: "==", Limit: 0}},
		{Name: "rss", Rule: &Rule{Metric: "server_rss_bytes_per_stream", Op: "<=", Limit: 1024}},
	}
	s.Evaluate()
	for _, c := range s.Checks {
		if c.Verdict != VerdictFail {
			t.Errorf("%s: %+v, want fail", c.Name, c)
		}
	}
	if s.Verdict != VerdictFail {
		t.Errorf("scenario verdict %s", s.Verdict)
	}
	if !strings.Contains(s.Checks[3].Detail, "unknown metric") || !strings.Contains(s.Checks[4].Detail, "operator") {
		t.Errorf("details %q / %q", s.Checks[3].Detail, s.Checks[4].Detail)
	}
}

func TestMetricNamesResolve(t *testing.T) {
	r := fixtureResult(t)
	for _, name := range MetricNames() {
		if strings.Contains(name, "CLASS") || strings.Contains(name, "REASON") || strings.Contains(name, "CODE") {
			continue
		}
		if _, _, err := MetricValue(&r.Scenarios[0], name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if v, ok, err := MetricValue(&r.Scenarios[0], "status.200"); err != nil || !ok || v != float64(r.Scenarios[0].Metrics.Attempts) {
		t.Errorf("status.200 = %v %v %v", v, ok, err)
	}
	if _, _, err := MetricValue(&r.Scenarios[0], "nope"); err == nil {
		t.Error("unknown metric accepted")
	}
}

func TestServerFigures(t *testing.T) {
	f := NewServerFigures(probeSeries(t0, 8, 100), 100)
	g, ok := f.Metric(ServerGoroutines)
	if !ok || *g.Baseline != 12 || *g.Peak != 212 || *g.AfterDrain != 13 || *g.PerStream != 2 {
		t.Fatalf("goroutines %+v", g)
	}
	if f.Metrics[0].Name != ServerGoroutines || f.Metrics[1].Name != ServerRSS || f.Metrics[2].Name != "senders" {
		t.Errorf("order %v %v %v", f.Metrics[0].Name, f.Metrics[1].Name, f.Metrics[2].Name)
	}
	if len(f.Samples) != 10 || !f.Available() {
		t.Errorf("%d samples", len(f.Samples))
	}
	// Nothing probed: the standard figures are listed, every value n/a (nil), never 0.
	none := NewServerFigures(ServerProbe{}, 100)
	if none.Available() || len(none.Metrics) != 2 || none.Metrics[0].Peak != nil || none.Note == "" {
		t.Errorf("no probe: %+v", none)
	}
	// Baseline missing: peak known, per stream n/a.
	p := probeSeries(t0, 8, 100)
	p.Baseline = nil
	g, _ = NewServerFigures(p, 100).Metric(ServerGoroutines)
	if g.Baseline != nil || g.PerStream != nil || g.Peak == nil {
		t.Errorf("no baseline: %+v", g)
	}
	b, _ := json.Marshal(none.Metrics[0])
	if !strings.Contains(string(b), `"baseline":null`) {
		t.Errorf("n/a is not null in JSON: %s", b)
	}
	failed := NewServerFigures(ServerProbe{Baseline: &ProbeSample{Time: t0, Err: "connection refused"}}, 1)
	if failed.Available() || failed.Note != "server probe failed: connection refused" {
		t.Errorf("failed probe: %+v", failed)
	}
	many := ServerProbe{}
	for i := 0; i < 5000; i++ {
		many.Samples = append(many.Samples, ProbeSample{Time: t0.Add(time.Duration(i) * time.Second), Values: map[string]float64{ServerGoroutines: float64(i)}})
	}
	thin := NewServerFigures(many, 1)
	if len(thin.Samples) != maxServerSamples || thin.Samples[len(thin.Samples)-1].Values[ServerGoroutines] != 4999 {
		t.Errorf("thinned to %d samples", len(thin.Samples))
	}
	if g, _ := thin.Metric(ServerGoroutines); *g.Peak != 4999 {
		t.Errorf("peak from thinned samples %v, want 4999 from all", *g.Peak)
	}
}

func TestResultRoundTrip(t *testing.T) {
	r := fixtureResult(t)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := Save(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := Encode(&a, r); err != nil {
		t.Fatal(err)
	}
	if err := Encode(&b, back); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("result changed in a save/load round trip")
	}
	raw, _ := os.ReadFile(path)
	for _, field := range []string{`"schema_version": 2`, `"harness_version"`, `"delivery_latency"`, `"time_to_first_event"`, `"requested"`, `"achieved"`, `"histogram"`, `"per_stream"`} {
		if !bytes.Contains(raw, []byte(field)) {
			t.Errorf("result file lacks %s", field)
		}
	}
	if p, ok := back.Scenarios[0].Metrics.Latency.Percentile(99); !ok || relErr(float64(p)/1e6, r.Scenarios[0].Metrics.Latency.P99MS) > HistogramRelativeError {
		t.Errorf("histogram p99 after load %v vs %vms", p, r.Scenarios[0].Metrics.Latency.P99MS)
	}
	if back.Scenarios[0].Load.Achieved.Streams != 120 || back.Scenarios[0].Load.Achieved.OpenRate < 19 || back.Scenarios[0].Load.Achieved.OpenRate > 21 {
		t.Errorf("achieved %+v", back.Scenarios[0].Load.Achieved)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "absent.json"), "does not exist"},
		{write("syntax.json", "{\n  \"schema_version\": 1,\n  oops\n}"), "not valid JSON: line 3, column 3"},
		{write("trunc.json", `{"schema_version": 1, "scenarios": [`), "not valid JSON"},
		{write("noschema.json", `{"target": "x"}`), "no schema_version"},
		{write("future.json", `{"schema_version": 7}`), "schema_version 7; this harness reads versions 1 to 2"},
		{write("types.json", `{"schema_version": 1, "scenarios": [{"metrics": {"events": "many"}}]}`), "field scenarios.metrics.events holds a JSON string"},
		{write("verdict.json", `{"schema_version": 1, "verdict": "maybe", "scenarios": []}`), `verdict: unknown value "maybe" (known: pass, fail, warn, n/a, error)`},
		{write("noverdict.json", `{"schema_version": 1, "scenarios": []}`), `verdict: missing`},
		{write("checkverdict.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [
			{"name": "a", "verdict": "pass", "metrics": {}, "checks": [{"name": "x", "verdict": "pass"}]},
			{"name": "b", "verdict": "pass", "metrics": {}},
			{"name": "c", "verdict": "pass", "metrics": {}, "checks": [{"name": "y", "verdict": "maybe"}]}]}`), `scenarios[2].checks[0].verdict: unknown value "maybe"`},
		{write("level.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [{"name": "conform", "verdict": "pass", "metrics": {},
			"checks": [{"name": "x", "verdict": "pass", "level": "MAY"}]}]}`), `scenarios[0].checks[0].level: unknown value "MAY" (known: MUST, SHOULD, ADVISORY, or none)`},
		{write("scverdict.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [{"name": "a", "verdict": "PASS", "metrics": {}}]}`), `scenarios[0].verdict: unknown value "PASS"`},
		{write("op.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [{"name": "a", "verdict": "pass", "metrics": {},
			"checks": [{"name": "x", "verdict": "pass", "rule": {"metric": "errors", "op": "=<", "limit": 0}}]}]}`), `scenarios[0].checks[0].rule.op: unknown value "=<"`},
		{write("nometrics.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [{"name": "a", "verdict": "pass", "metrics": {}}, {"name": "b", "verdict": "pass"}]}`), `scenarios[1].metrics: missing`},
		{write("nullmetrics.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [{"name": "a", "verdict": "pass", "metrics": null}]}`), `scenarios[0].metrics: missing`},
		{write("dupname.json", `{"schema_version": 1, "verdict": "pass", "scenarios": [{"name": "a", "verdict": "pass", "metrics": {}}, {"name": "a", "verdict": "pass", "metrics": {}}]}`), `scenarios[1].name: "a" is also scenarios[0]`},
		{write("many.json", `{"schema_version": 1, "verdict": "?", "scenarios": [{"name": "a", "verdict": "?", "metrics": {},
			"checks": [{"name": "x", "verdict": "?"}, {"name": "y", "verdict": "?"}, {"name": "z", "verdict": "?"}, {"name": "w", "verdict": "?"}, {"verdict": "?"}]}]}`), `scenarios[0].checks[2].verdict: unknown value "?" (known: pass, fail, warn, n/a, error); and 3 more`},
		{write("hist.json", `{"schema_version": 1, "scenarios": [{"metrics": {"delivery_latency": {"count": 2, "histogram": {"relative_error": 0.0099, "count": 2, "offset": 0, "counts": [1]}}}}]}`), "histogram"},
	}
	for _, c := range cases {
		_, err := Load(c.path)
		if err == nil {
			t.Errorf("%s: loaded", c.path)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, filepath.Base(c.path)) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line naming the file and containing %q", filepath.Base(c.path), msg, c.want)
		}
	}
}

// TestLoadRefusesLargeFiles: a file over the limit is refused without being decoded,
// whatever it holds; the same file loads under a raised limit.
func TestLoadRefusesLargeFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.json")
	if err := Save(path, fixtureResult(t)); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadMax(path, st.Size()-1)
	var tooLarge *FileTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != st.Size() || !strings.Contains(err.Error(), "big.json is ") || !strings.Contains(err.Error(), "larger than the limit") {
		t.Fatalf("limit one byte short: %v", err)
	}
	if _, err := LoadMax(path, st.Size()); err != nil {
		t.Fatalf("limit exactly the size: %v", err)
	}
	// Not a regular file: found too large while reading, at most limit+1 bytes read.
	pipePath := filepath.Join(t.TempDir(), "pipe.json")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		defer pw.Close()
		chunk := bytes.Repeat([]byte(" "), 4096)
		for {
			if _, err := pw.Write(chunk); err != nil {
				return // the reader stopped and closed its end
			}
		}
	}()
	if err := os.Symlink(fmt.Sprintf("/proc/self/fd/%d", pr.Fd()), pipePath); err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	_, err = LoadMax(pipePath, 1<<20)
	if !errors.As(err, &tooLarge) || tooLarge.Size != -1 {
		t.Fatalf("endless pipe: %v", err)
	}
	pr.Close()
}

func TestSaveError(t *testing.T) {
	err := Save(filepath.Join(t.TempDir(), "no", "such", "dir", "r.json"), fixtureResult(t))
	if err == nil || !strings.Contains(err.Error(), "r.json") {
		t.Fatalf("Save into a missing directory: %v", err)
	}
}
