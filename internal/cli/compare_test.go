package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCompareCommandGates(t *testing.T) {
	dir := t.TempDir()
	base := writeReportResult(t, dir, "base.json", reportResultSpec{streams: 50, events: 10, latency: 10 * time.Millisecond})
	within := writeReportResult(t, dir, "within.json", reportResultSpec{streams: 50, events: 10, latency: 10500 * time.Microsecond})
	beyond := writeReportResult(t, dir, "beyond.json", reportResultSpec{streams: 50, events: 10, latency: 13 * time.Millisecond})
	errs := writeReportResult(t, dir, "errors.json", reportResultSpec{streams: 50, events: 10, latency: 10 * time.Millisecond, errors: 1})
	lost := writeReportResult(t, dir, "lost.json", reportResultSpec{streams: 50, events: 10, latency: 10 * time.Millisecond, missing: 3})

	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"identical", []string{base, base}, ExitOK, []string{"latency_p99", "no gated metric regressed"}},
		{"p99 +5% within the default 10%", []string{base, within}, ExitOK, []string{"+5.0", "ok"}},
		{"p99 +30% beyond the default 10%", []string{base, beyond}, ExitFailed, []string{"REGRESSED", "resume latency_p99 +30.0% (limit 10%)"}},
		{"p99 +30% within an override of 50%", []string{base, beyond, "--max-regression", "latency_p99=50"}, ExitOK, []string{"+50%"}},
		{"override before the files", []string{"--max-regression=latency_p99=50", base, beyond}, ExitOK, nil},
		{"errors from 0", []string{base, errs}, ExitFailed, []string{"resume errors from 0"}},
		{"lost ids from 0", []string{base, lost}, ExitFailed, []string{"missing_ids"}},
		{"improvement", []string{beyond, base}, ExitOK, []string{"-23.1%"}},
		{"added gate on events", []string{base, beyond, "--max-regression", "events=0,latency_max=1,latency_p99=50"}, ExitFailed, []string{"resume latency_max"}},
		{"a 0.5ms move is noise even past its percentage", []string{base, within, "--max-regression", "latency_max=1"}, ExitOK, nil},
	}
	for _, c := range cases {
		code, stdout, stderr := runReportCmd(t, append([]string{"compare"}, c.args...)...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\nstdout %s\nstderr %s", c.name, code, c.code, stdout, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", c.name, w, stdout)
			}
		}
	}
}

func TestCompareCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	base := writeReportResult(t, dir, "base.json", reportResultSpec{streams: 5, events: 2, latency: time.Millisecond})
	malformed := filepath.Join(dir, "bad.json")
	os.WriteFile(malformed, []byte("{\"schema_version\": 1,\n oops}"), 0o644)
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"name": "not a result"}`), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{base, filepath.Join(dir, "absent.json")}, "absent.json does not exist"},
		{[]string{filepath.Join(dir, "absent.json"), base}, "absent.json does not exist"},
		{[]string{base, malformed}, "bad.json is not valid JSON: line 2"},
		{[]string{base, other}, "other.json has no schema_version"},
		{[]string{base}, "want BASE.json and NEW.json"},
		{[]string{base, base, "--max-regression", "latncy_p99=5"}, `unknown metric "latncy_p99"`},
		{[]string{base, base, "--max-regression", "latency_p99=-5"}, "non-negative"},
	}
	for _, c := range cases {
		code, stdout, stderr := runReportCmd(t, append([]string{"compare"}, c.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, stdout, stderr, c.want)
		}
		if !strings.Contains(c.want, "want BASE") && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: stderr is not one line: %q", c.args, stderr)
		}
	}
	// The unknown-metric error lists the known names.
	_, _, stderr := runReportCmd(t, "compare", base, base, "--max-regression", "nope=1")
	for _, w := range []string{"known metrics:", "latency_p99", "ttfe_p99", "duplicate_senders", "errors.CLASS"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("unknown-metric error lacks %q", w)
		}
	}
}

func TestCompareCommandHelp(t *testing.T) {
	code, _, stderr := runReportCmd(t, "compare", "-h")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"-max-regression", "latency_p99=10", "errors=0", "missing_ids=0", "duplicate_senders=0", "ttfe_p99=10", "Exit status"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("help lacks %q:\n%s", w, stderr)
		}
	}
}

// editResult writes a copy of the result file src as name in its directory, after edit
// has changed its JSON document.
func editResult(t *testing.T, src, name string, edit func(doc map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(src), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// scenario0 is the first scenario object of a result document.
func scenario0(doc map[string]any) map[string]any {
	return doc["scenarios"].([]any)[0].(map[string]any)
}

// TestCompareCommandLostEvidence: a new result that lost scenarios, checks or gated
// metrics of the base fails the gate, naming what is gone; a malformed one is exit 2;
// neither ever passes.
func TestCompareCommandLostEvidence(t *testing.T) {
	dir := t.TempDir()
	base := writeReportResult(t, dir, "base.json", reportResultSpec{streams: 20, events: 5, latency: 10 * time.Millisecond})
	cases := []struct {
		name string
		edit func(map[string]any)
		code int
		want string // on stdout for exit 1, on stderr (one line) for exit 2
	}{
		{"scenarios null", func(d map[string]any) { d["scenarios"] = nil }, ExitFailed,
			"1 item(s) of the base lost: scenario resume is missing from the new result"},
		{"scenarios empty", func(d map[string]any) { d["scenarios"] = []any{} }, ExitFailed, "scenario resume is missing from the new result"},
		{"scenarios absent", func(d map[string]any) { delete(d, "scenarios") }, ExitFailed, "scenario resume is missing from the new result"},
		{"scenario renamed", func(d map[string]any) { scenario0(d)["name"] = "resume-2" }, ExitFailed, "scenario resume is missing from the new result"},
		{"a check gone", func(d map[string]any) {
			s := scenario0(d)
			s["checks"] = s["checks"].([]any)[1:]
		}, ExitFailed, "scenario resume: check no-lost-ids is missing from the new result"},
		{"checks null", func(d map[string]any) { scenario0(d)["checks"] = nil }, ExitFailed, "check in-order is missing"},
		{"could not run", func(d map[string]any) {
			s := scenario0(d)
			s["verdict"], s["error"] = "error", "dial tcp 127.0.0.1:9: connection refused"
		}, ExitFailed, "scenario resume could not run in the new result: dial tcp 127.0.0.1:9: connection refused"},
		{"latencies gone", func(d map[string]any) {
			scenario0(d)["metrics"].(map[string]any)["delivery_latency"] = map[string]any{}
		}, ExitFailed, "resume latency_p99 has no value in the new result"},
		{"metrics absent", func(d map[string]any) { delete(scenario0(d), "metrics") }, ExitUsage,
			"new.json is invalid: scenarios[0].metrics: missing"},
		{"metrics null", func(d map[string]any) { scenario0(d)["metrics"] = nil }, ExitUsage, "scenarios[0].metrics: missing"},
		{"scenarios not a list", func(d map[string]any) { d["scenarios"] = "all" }, ExitUsage, "new.json is malformed"},
	}
	for _, c := range cases {
		next := editResult(t, base, "new.json", c.edit)
		code, stdout, stderr := runReportCmd(t, "compare", base, next)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\nstdout %s\nstderr %s", c.name, code, c.code, stdout, stderr)
			continue
		}
		if strings.Contains(stdout, "no gated metric regressed") {
			t.Errorf("%s: says it passed:\n%s", c.name, stdout)
		}
		if c.code == ExitFailed && !strings.Contains(stdout, c.want) {
			t.Errorf("%s: stdout lacks %q:\n%s", c.name, c.want, stdout)
		}
		if c.code == ExitUsage && (!strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stdout != "") {
			t.Errorf("%s: stderr %q (stdout %q), want one line with %q", c.name, stderr, stdout, c.want)
		}
	}
	// A base without scenarios gives nothing to gate on: refused, not passed.
	empty := editResult(t, base, "empty.json", func(d map[string]any) { d["scenarios"] = nil })
	code, stdout, stderr := runReportCmd(t, "compare", empty, base)
	if code != ExitUsage || !strings.Contains(stderr, "empty.json has no scenarios: nothing to gate on") || stdout != "" {
		t.Errorf("empty base: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Evidence only in the new result is no loss.
	if code, stdout, _ := runReportCmd(t, "compare", editResult(t, base, "fewer.json", func(d map[string]any) {
		s := scenario0(d)
		s["checks"] = s["checks"].([]any)[1:]
	}), base); code != ExitOK {
		t.Errorf("check only in new: exit %d\n%s", code, stdout)
	}
}

// TestCompareCommandValidatesFiles: unknown verdicts and levels in either file, and files
// over the size limit, are exit 2 with one line naming the file and the field.
func TestCompareCommandValidatesFiles(t *testing.T) {
	dir := t.TempDir()
	base := writeReportResult(t, dir, "base.json", reportResultSpec{streams: 20, events: 5, latency: 10 * time.Millisecond})
	maybe := editResult(t, base, "maybe.json", func(d map[string]any) {
		scenario0(d)["checks"].([]any)[1].(map[string]any)["verdict"] = "maybe"
	})
	level := editResult(t, base, "level.json", func(d map[string]any) {
		scenario0(d)["checks"].([]any)[0].(map[string]any)["level"] = "must"
	})
	st, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{base, maybe}, `maybe.json is invalid: scenarios[0].checks[1].verdict: unknown value "maybe" (known: pass, fail, warn, n/a, error)`},
		{[]string{maybe, base}, `maybe.json is invalid: scenarios[0].checks[1].verdict: unknown value "maybe"`},
		{[]string{base, level}, `level.json is invalid: scenarios[0].checks[0].level: unknown value "must" (known: MUST, SHOULD, ADVISORY, or none)`},
		{[]string{base, base, "--max-file-size", fmt.Sprint(st.Size() - 1)}, "base.json is "},
		{[]string{base, base, "--max-file-size", "1KiB"}, "larger than the limit of 1.00 KiB (raise the limit with --max-file-size)"},
		{[]string{base, base, "--max-file-size", "lots"}, "want a positive size"},
		{[]string{base, base, "--max-file-size", "0"}, "want a positive size"},
	} {
		code, stdout, stderr := runReportCmd(t, append([]string{"compare"}, c.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, stdout, stderr, c.want)
		}
		if !strings.Contains(c.want, "positive") && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: stderr is not one line: %q", c.args, stderr)
		}
	}
	// The limit raised to the file's size lets the same files through.
	if code, stdout, stderr := runReportCmd(t, "compare", "--max-file-size", fmt.Sprint(st.Size()), base, base); code != ExitOK {
		t.Errorf("limit = size: exit %d\n%s%s", code, stdout, stderr)
	}
}
