package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sseharness/sseharness/scenarios"
)

// TestRunUsageErrorsExit2WithOneLine: bad invocations of run and list say what is wrong
// in one line and exit 2 before any load starts.
func TestRunUsageErrorsExit2WithOneLine(t *testing.T) {
	t.Parallel()
	badThresholds := filepath.Join(t.TempDir(), "slo.yaml")
	if err := os.WriteFile(badThresholds, []byte("resume:\n  no-such-check: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "no-such-scenario"}, `unknown scenario "no-such-scenario"`},
		{[]string{"run", "--target", "http://127.0.0.1:1", "--fault", "no-204"}, "--fault applies to the embedded reference server only"},
		{[]string{"run", "--fault", "nonsense", "resume"}, "known: "},
		{[]string{"run", "--shard", "4/4"}, "flag -shard: want I/N with 0 <= I < N"},
		{[]string{"run", "--shard", "x"}, "flag -shard: want I/N"},
		{[]string{"run", "--threshold", "resume/no-such-check=1"}, "names no known check"},
		{[]string{"run", "--threshold", "first-event=soon"}, "want a duration"},
		{[]string{"run", "--threshold", "broken"}, "CHECK=VALUE"},
		{[]string{"run", "--thresholds", badThresholds}, "no-such-check"},
		{[]string{"run", "--thresholds", filepath.Join(t.TempDir(), "missing.yaml")}, "does not exist"},
		{[]string{"run", "--target", "ftp://example"}, "http:// or https://"},
		{[]string{"run", "--format", "pdf"}, "unknown format"},
		{[]string{"run", "--capacity-steps", "100,x"}, "flag -capacity-steps: want comma-separated stream counts"},
		{[]string{"run", "--sent-unit", "minutes"}, "sent unit"}, // a {session} is optional since issue 11 (broadcast feeds)
		{[]string{"list", "extra"}, "unexpected argument"},
		{[]string{"run", "resume", "--streams", "x"}, "invalid value"},
		{[]string{"run", "--target", "http://127.0.0.1:1", "--server-arg=--tls"}, "--server-arg applies to the embedded reference server only"},
		{[]string{"run", "--server-arg", "tls", "h2-stream-cap"}, "want one serve flag"},
		{[]string{"run", "--server-arg=--addr=127.0.0.1:0", "h2-stream-cap"}, "chooses the embedded server's --addr"},
		{[]string{"run", "--trace-limit", "0", "hold"}, "--trace-limit 0"},
		{[]string{"run", "--out-interval", "-1s", "hold"}, "--out-interval"},
		{[]string{"run", "--trace", filepath.Join(t.TempDir(), "no", "dir", "t.jsonl"), "hold"}, "--trace"},
		{[]string{"run", "--target", "http://127.0.0.1:1", "--metrics-addr", "nohostport", "hold"}, "want HOST:PORT"},
	} {
		checkUsageError(t, tc.args, tc.want)
	}
}

// TestRunUnreachableTargetExit3: a target nobody listens on is a harness error, not a
// failed check.
func TestRunUnreachableTargetExit3(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	code := Main(context.Background(), []string{"run", "--target", "http://127.0.0.1:1", "--metrics-url", "none", "starvation"}, env)
	if code != ExitHarness {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, ExitHarness, out.String(), stderr)
	}
	if !strings.Contains(out.String(), "starvation") || !strings.Contains(out.String(), "error") {
		t.Errorf("the result does not say the scenario could not run:\n%s", out.String())
	}
}

// TestListNamesEveryScenarioAndCheck: list prints every scenario with what it proves, and
// -v every check with its default threshold.
func TestListNamesEveryScenarioAndCheck(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env, _ := serveTestEnv(&out)
	if code := Main(context.Background(), []string{"list", "-v"}, env); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range scenarios.All() {
		if !strings.Contains(out.String(), s.Name+" ") || !strings.Contains(out.String(), s.Proves) {
			t.Errorf("list lacks %s", s.Name)
		}
		for _, c := range s.Checks {
			if !strings.Contains(out.String(), c.Name) {
				t.Errorf("list -v lacks %s/%s", s.Name, c.Name)
			}
		}
	}
}
