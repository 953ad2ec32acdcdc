package cli

import (
	"strings"
	"testing"
	"time"
)

// targetCases are bad target URLs and what the one-line error must say; each is refused
// by run and by conform with exit 2 before anything is dialled.
var targetCases = []struct {
	target, want string
}{
	{"http://", `"http://" has no host`},
	{"https://", `"https://" has no host`},
	{"http:///events", "has no host"},
	{"http://:18090", `"http://:18090" has a port but no host name; write the host, e.g. http://127.0.0.1:18090`},
	{"http://:18090/sessions/x/events", "has a port but no host name"},
	{"https://:0", "has a port but no host name"},
	{"ftp://127.0.0.1/x", "the scheme must be http:// or https://, not ftp://"},
	{"ws://127.0.0.1:8080/events", "not ws://"},
	{"127.0.0.1:8080", "is not an absolute URL"},
	{"localhost:8080", "is not an absolute URL"},
	{"http:127.0.0.1", "is not an absolute URL"},
	{"/events?next=http://127.0.0.1", "has no scheme"},
	{"://127.0.0.1", "not a URL: missing protocol scheme"},
	{"http://[::1", `is not a URL: missing ']' in host`},
	{"http://127.0.0.1:abc/", `is not a URL: invalid port ":abc" after host`},
	{"http://127.0.0.1:99999/", "port 99999 is not in 1-65535"},
	{"http://127.0.0.1:/", "the port after ':' is empty"},
	{"http://a b/", "is not a URL: invalid character"},
	{" http://127.0.0.1:8080", "has spaces around the URL"},
	{"   ", "--target is empty"},
}

func TestValidateTarget(t *testing.T) {
	for _, c := range targetCases {
		err := validateTarget("--target", c.target)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "--target") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line starting --target with %q", c.target, err, c.want)
		}
	}
	for _, ok := range []string{
		"http://127.0.0.1:8080", "https://127.0.0.1:8443/events?user=1", "http://[::1]:9000", "HTTP://localhost/",
		"http://user:pw@127.0.0.1:1/", "http://example.test",
	} {
		if err := validateTarget("--target", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// TestRunAndConformRefuseBadTargets: the same bad URL is exit 2 with one line from both
// commands, with nothing on stdout (no result table, no run).
func TestRunAndConformRefuseBadTargets(t *testing.T) {
	t.Parallel()
	for _, c := range targetCases {
		if strings.TrimSpace(c.target) == "" {
			continue // an empty --target means the embedded server for run
		}
		for _, cmd := range []string{"run", "conform"} {
			args := []string{cmd, "--target", c.target}
			if cmd == "run" {
				args = append(args, "--metrics-url", "none", "starvation")
			}
			code, stdout, stderr := runReportCmd(t, args...)
			if code != ExitUsage {
				t.Errorf("%s --target %q: exit %d, want 2\nstdout %s\nstderr %s", cmd, c.target, code, stdout, stderr)
				continue
			}
			first := strings.SplitN(stderr, "\n", 2)[0]
			if !strings.HasPrefix(first, "sseharness "+cmd+": --target") || !strings.Contains(first, c.want) {
				t.Errorf("%s --target %q: first line %q, want %q", cmd, c.target, first, c.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 1 || !strings.Contains(stderr, "Run 'sseharness "+cmd+" -h'") && n > 0 {
				t.Errorf("%s --target %q: not a one-line error: %q", cmd, c.target, stderr)
			}
			if stdout != "" {
				t.Errorf("%s --target %q: printed %q", cmd, c.target, stdout)
			}
		}
	}
	// An empty target to conform is still its own "required" error.
	if code, _, stderr := runReportCmd(t, "conform", "--target", ""); code != ExitUsage || !strings.Contains(stderr, "required") {
		t.Errorf("conform without a target: exit %d, %q", code, stderr)
	}
}

// TestConformChecksItsURLsAndOutputBeforeWatching: a bad --resume-url or --stop-url and an
// --out that cannot be written are exit 2 at once, all named in one line, before any
// watch of --idle starts (the target below would be watched for an hour).
func TestConformChecksItsURLsAndOutputBeforeWatching(t *testing.T) {
	t.Parallel()
	start := time.Now()
	code, stdout, stderr := runReportCmd(t, "conform", "--target", "http://127.0.0.1:1/events", "--idle", "1h",
		"--resume-url", "http://:18090/x", "--stop-url", "ftp://127.0.0.1/done", "--out", "/nonexistent/dir/x.json")
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	first := strings.SplitN(stderr, "\n", 2)[0]
	for _, want := range []string{"--resume-url", "no host name", "--stop-url", "ftp://", "--out /nonexistent/dir/x.json", "does not exist"} {
		if !strings.Contains(first, want) {
			t.Errorf("first line %q lacks %q", first, want)
		}
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v: the checks waited for the watch", took)
	}
	if stdout != "" {
		t.Errorf("printed %q", stdout)
	}
}
