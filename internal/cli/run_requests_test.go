package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunRequestFlagErrors: bad request-stream flags exit 2 with one line that names
// every problem at once.
func TestRunRequestFlagErrors(t *testing.T) {
	t.Parallel()
	notJSON := filepath.Join(t.TempDir(), "bodies.jsonl")
	if err := os.WriteFile(notJSON, []byte("{\"a\":1}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--rate", "x", "--arrival", "gamma:-1", "--slo", "ttft=soon,foo=1s", "request-stream"},
			[]string{"--rate", "--arrival", `"ttft=soon"`, `unknown objective "foo"`}},
		{[]string{"run", "--rate", "1,2", "request-stream"}, []string{"request-stream runs at one rate"}},
		{[]string{"run", "--rate", "0,-1", "request-capacity"}, []string{"rate 0", "rate -1"}},
		{[]string{"run", "--body-file", notJSON, "request-stream"}, []string{"line 2: not one JSON value"}},
		{[]string{"run", "--content-path", "a..b", "--method", "BAD METHOD", "request-stream"}, []string{"content path", "method"}},
		{[]string{"run", "--goodput-target", "2", "--max-concurrency", "0", "request-capacity"}, []string{"goodput target", "--max-concurrency"}},
		{[]string{"run", "--end-event", "message_stop", "--end-data", "[DONE]", "request-stream"}, []string{"set one terminal"}},
	} {
		checkUsageError(t, tc.args, tc.want...)
	}
}

// TestRequestFlagsResolve: --slo becomes request-stream's thresholds unless --threshold
// set one; --end-event drops the default end data; --method only when given.
func TestRequestFlagsResolve(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	rf := addRequestFlags(fs)
	if err := fs.Parse([]string{"--slo", "ttft=300ms,e2e=5s", "--end-event", "message_stop", "--usage-path", "none"}); err != nil {
		t.Fatal(err)
	}
	thr := map[string]string{"request-stream/e2e-p99": "9s"}
	o, _, err := rf.options(fs, thr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if thr["request-stream/ttft-p99"] != "300ms" || thr["request-stream/e2e-p99"] != "9s" || len(thr) != 2 {
		t.Errorf("thresholds %v", thr)
	}
	if o.SLO.TTFT != 300*time.Millisecond || o.SLO.E2E != 5*time.Second || o.SLO.ITL != 0 {
		t.Errorf("slo %+v", o.SLO)
	}
	if o.EndData != "" || o.EndEvent != "message_stop" || o.Method != "" || o.UsagePath != "" {
		t.Errorf("end data %q end event %q method %q usage %q", o.EndData, o.EndEvent, o.Method, o.UsagePath)
	}
}

// TestRunRequestStreamUnreachableExit3: nobody listening is exit 3, not a failed check.
func TestRunRequestStreamUnreachableExit3(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	code := Main(context.Background(), []string{"run", "--target", "http://127.0.0.1:1", "--metrics-url", "none", "--requests", "3", "--rate", "50", "request-stream"}, env)
	if code != ExitHarness {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, ExitHarness, out.String(), stderr)
	}
	if !strings.Contains(stderr.String(), "target unreachable") {
		t.Errorf("stderr does not say the target is unreachable: %s", stderr)
	}
}
