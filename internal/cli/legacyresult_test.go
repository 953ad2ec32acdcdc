package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sseharness/sseharness/report"
)

// legacyResult is a result file whose histograms are of the older bucket form (before
// the sketch); report, report merge and compare must keep reading it.
var legacyResult = filepath.Join("..", "..", "report", "testdata", "result-legacy-buckets.json")

func TestLegacyResultFileCommands(t *testing.T) {
	// The file holds a scenario that could not run: report and merge exit as run did.
	code, stdout, stderr := runReportCmd(t, "report", legacyResult)
	if code != ExitHarness || !strings.Contains(stdout, "resume") || strings.Contains(stderr, "invalid") {
		t.Fatalf("report: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	dir := t.TempDir()
	current := filepath.Join(dir, "current.json")
	if code, _, stderr := runReportCmd(t, "report", legacyResult, "--format", "json", "--out", current); code != ExitHarness {
		t.Fatalf("report --format json: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(current); !strings.Contains(string(b), `"sketch": "ddsketch"`) || strings.Contains(string(b), `"relative_error"`) ||
		!strings.Contains(string(b), `"schema_version": 2`) {
		t.Fatal("the legacy file re-written as json is not of the current form")
	}
	merged := filepath.Join(dir, "merged.json")
	if code, _, stderr := runReportCmd(t, "report", "merge", merged, legacyResult, current); code != ExitHarness {
		t.Fatalf("report merge: exit %d: %s", code, stderr)
	}
	m, err := report.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := report.Load(legacyResult)
	if got, want := m.Scenarios[0].Metrics.Latency.Count, 2*old.Scenarios[0].Metrics.Latency.Count; got != want {
		t.Errorf("merged latency count %d, want %d", got, want)
	}
	for _, pair := range [][]string{{legacyResult, legacyResult}, {legacyResult, current}} {
		code, stdout, stderr := runReportCmd(t, "compare", pair[0], pair[1])
		if code != ExitOK || !strings.Contains(stdout, "latency_p99") {
			t.Errorf("compare %s %s: exit %d\nstdout %s\nstderr %s", pair[0], pair[1], code, stdout, stderr)
		}
	}
}
