package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dirEntries lists dir's names, to show that a check leaves nothing behind.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestRunRefusesUnwritableOutputsBeforeLoad: every file run would write is checked
// before any load starts: exit 2 at once, one line naming the flag and the path, nothing
// on stdout, and no file left behind. The target is one nobody listens on, so a check
// that let the run through would show as exit 3 with a result table, not as a hang.
func TestRunRefusesUnwritableOutputsBeforeLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	aFile := filepath.Join(dir, "plain")
	if err := os.WriteFile(aFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		out, want string
	}{
		{"/nonexistent/dir/x.json", "--out /nonexistent/dir/x.json: directory /nonexistent/dir does not exist"},
		{filepath.Join(dir, "no", "such", "x.json"), "no/such does not exist"},
		{dir, "is a directory"},
		{dir + "/", "names a directory, not a file"},
		{filepath.Join(aFile, "x.json"), "plain is not a directory"},
	}
	if st, err := os.Stat("/sys"); err == nil && st.IsDir() {
		cases = append(cases, struct{ out, want string }{"/sys/x.json", "cannot write in directory /sys: permission denied"})
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ out, want string }{filepath.Join(ro, "x.json"), "cannot write in directory " + ro + ": permission denied"})
	}
	before := dirEntries(t, dir)
	for _, c := range cases {
		start := time.Now()
		code, stdout, stderr := runReportCmd(t, "run", "--target", "http://127.0.0.1:1", "--metrics-url", "none", "--out", c.out, "starvation")
		if code != ExitUsage {
			t.Errorf("--out %s: exit %d, want 2\nstdout %s\nstderr %s", c.out, code, stdout, stderr)
			continue
		}
		first := strings.SplitN(stderr, "\n", 2)[0]
		if !strings.HasPrefix(first, "sseharness run: --out ") || !strings.Contains(first, c.want) {
			t.Errorf("--out %s: first line %q, want %q", c.out, first, c.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 1 || stdout != "" {
			t.Errorf("--out %s: stderr %q stdout %q, want one line and nothing on stdout", c.out, stderr, stdout)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("--out %s: refused after %v, want at once", c.out, d)
		}
	}
	if after := dirEntries(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("refused runs left files: before %q, after %q", before, after)
	}
	// A bad target and a bad output are reported together.
	_, _, stderr := runReportCmd(t, "run", "--target", "http://:18090", "--out", "/nonexistent/dir/x.json", "starvation")
	if !strings.Contains(stderr, "has a port but no host name") || !strings.Contains(stderr, "; --out /nonexistent/dir/x.json: directory /nonexistent/dir does not exist") {
		t.Errorf("both problems: %q", stderr)
	}
}

// TestRunPreflightLeavesNoFile: a writable --out passes the check without creating it or
// anything else; a run refused after the check (a later usage error) leaves the directory
// as it was; a run that goes ahead writes the result and nothing else.
func TestRunPreflightLeavesNoFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "x.json")
	if err := (runPreflight{Target: "http://127.0.0.1:1", Outputs: []outputFile{{"--out", out}}}).check(); err != nil {
		t.Fatalf("writable --out refused: %v", err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Fatalf("the check left %q", names)
	}
	// An existing file is neither truncated nor replaced by the check.
	if err := os.WriteFile(out, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (runPreflight{Outputs: []outputFile{{"--out", out}}}).check(); err != nil {
		t.Fatalf("existing --out refused: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep" {
		t.Fatalf("the check changed the existing file to %q", b)
	}
	os.Remove(out)
	code, _, stderr := runReportCmd(t, "run", "--target", "http://127.0.0.1:1", "--out", out, "--sent-unit", "minutes", "starvation")
	if code != ExitUsage || !strings.Contains(stderr, "sent unit") {
		t.Fatalf("later usage error: exit %d, %q", code, stderr)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Fatalf("a refused run left %q", names)
	}
	code, stdout, stderr := runReportCmd(t, "run", "--target", "http://127.0.0.1:1", "--metrics-url", "none", "--out", out, "starvation")
	if code != ExitHarness {
		t.Fatalf("unreachable target: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if names := dirEntries(t, dir); strings.Join(names, ",") != "x.json" {
		t.Errorf("after the run the directory holds %q, want only x.json", names)
	}
	// The same file named twice is refused (one would overwrite the other).
	err := (runPreflight{Outputs: []outputFile{{"--out", out}, {"--trace", filepath.Join(dir, ".", "x.json")}}}).check()
	if err == nil || !strings.Contains(err.Error(), "--trace "+filepath.Join(dir, "x.json")+" is also --out") {
		t.Errorf("same path twice: %v", err)
	}
}
