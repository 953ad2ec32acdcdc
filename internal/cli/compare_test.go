package cli

import (
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
