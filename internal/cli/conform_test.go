package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

func conformEnv() (*Env, *bytes.Buffer, *serveTestBuffer) {
	var out bytes.Buffer
	errb := &serveTestBuffer{}
	return &Env{Stdout: &out, Stderr: errb, Getenv: func(string) string { return "" }}, &out, errb
}

func TestConformUsageErrorsExit2WithOneLine(t *testing.T) {
	t.Parallel()
	cases := [][]string{
		{},
		{"--target", "ftp://x"},
		{"--target", "http://127.0.0.1:1/s", "--idle", "0s"},
		{"--target", "http://127.0.0.1:1/s", "--timeout", "-1s"},
		{"--target", "http://127.0.0.1:1/s", "--origin", "http://a.test/path"},
		{"--target", "http://127.0.0.1:1/s", "--format", "pdf"},
		{"--target", "http://127.0.0.1:1/s", "--header", "no colon"},
		{"--target", "http://127.0.0.1:1/s", "--header", "Last-Event-ID: 3"},
		{"--target", "http://127.0.0.1:1/s", "extra"},
		{"--bogus"},
	}
	for _, args := range cases {
		env, _, errb := conformEnv()
		code := Main(context.Background(), append([]string{"conform"}, args...), env)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want 2; stderr %s", args, code, errb)
			continue
		}
		first := strings.SplitN(errb.String(), "\n", 2)[0]
		if !strings.Contains(first, "conform") && !strings.Contains(first, "flag") {
			t.Errorf("%q: first stderr line %q does not say what is wrong", args, first)
		}
		if strings.Contains(errb.String(), "goroutine") || strings.Contains(errb.String(), "panic") {
			t.Errorf("%q: stack trace on stderr: %s", args, errb)
		}
	}
}

// TestConformBadDurationSaidOnce: a negative --idle or --timeout is one problem, said
// once (not by the flag check and again by the config's Validate).
func TestConformBadDurationSaidOnce(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--idle", "--timeout"} {
		env, _, errb := conformEnv()
		code := Main(context.Background(), []string{"conform", "--target", "http://127.0.0.1:1/s", flag, "-1s"}, env)
		msg := strings.TrimSpace(errb.String())
		first := strings.SplitN(msg, "\n", 2)[0]
		name := strings.TrimPrefix(flag, "--")
		if code != ExitUsage || strings.Count(first, name) != 1 || !strings.Contains(first, flag+" must be > 0, got -1s") {
			t.Errorf("%s -1s: exit %d, first line %q; want exit 2 and the problem once", flag, code, first)
		}
	}
}

func TestConformHelpNamesEveryFlagWithDefault(t *testing.T) {
	t.Parallel()
	env, _, errb := conformEnv()
	if code := Main(context.Background(), []string{"conform", "-h"}, env); code != ExitOK {
		t.Fatalf("-h: exit %d", code)
	}
	help := errb.String()
	for _, f := range []string{"-target", "-resume-url", "-stop-url", "-origin", "-idle", "-timeout", "-insecure", "-header", "-out", "-format"} {
		if !strings.Contains(help, f+" ") && !strings.Contains(help, f+"\n") {
			t.Errorf("help does not explain %s", f)
		}
	}
	for _, def := range []string{`(default 20s)`, `(default 10s)`, `(default "http://example.test")`, `(default "table")`} {
		if !strings.Contains(help, def) {
			t.Errorf("help does not show %s", def)
		}
	}
}

func TestConformUnreachableExit3(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env, _, errb := conformEnv()
	code := Main(context.Background(), []string{"conform", "--target", "http://" + addr + "/s", "--idle", "1s", "--timeout", "2s"}, env)
	if code != ExitHarness || !strings.Contains(errb.String(), "unreachable") {
		t.Fatalf("exit %d, stderr %s; want 3 and 'unreachable'", code, errb)
	}
}

// finishSession opens a stream of session id and completes its job through the
// progress callback, so that the session answers 204 from then on (the stop URL).
func finishSession(t *testing.T, base, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sessions/"+id+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	post, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/sessions/"+id+"/progress", strings.NewReader(`{"progress":100}`))
	post.Header.Set("Content-Type", "application/json")
	pr, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode/100 != 2 {
		t.Fatalf("progress callback: %s", pr.Status)
	}
}

// TestConformAgainstReferenceAndFaults runs `sseharness conform` against the real
// reference server and the fault modes issue 6 names: the reference passes every MUST,
// and each fault fails the check that it violates. Short timers (--idle 3s, heartbeat
// 1s) keep it brief; the runs overlap.
func TestConformAgainstReferenceAndFaults(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	cases := []struct {
		name     string
		serve    []string
		wantExit int
		want     map[int]report.Verdict
	}{
		{"reference", []string{"--heartbeat", "1s"}, ExitOK, map[int]report.Verdict{
			1: "pass", 2: "pass", 4: "pass", 7: "pass", 8: "pass", 9: "pass", 10: "pass", 12: "pass", 18: "pass", 22: "pass"}},
		// Buffered output shows as events arriving in pieces once there is output to
		// fill the 2 KiB buffer (150 ms ticks: a flush about every 1.8 s, the event cut at its edge completed more than a second later); while the buffer never fills the stream
		// only looks silent, which is keep-alive's to judge (issue 12: silence is not
		// buffering), so check 7 is n/a there.
		{"no-flush", []string{"--tick", "150ms", "--heartbeat", "1s", "--fault", "no-flush"}, ExitFailed, map[int]report.Verdict{7: "fail", 21: "warn"}},
		{"no-flush-nothing-to-fill-it", []string{"--heartbeat", "1s", "--fault", "no-flush"}, ExitOK, map[int]report.Verdict{7: "n/a", 8: "fail", 21: "warn"}},
		// A compressor that is never flushed holds events until its buffer fills: with
		// ticks fast enough to fill it within the watch, events arrive in pieces,
		// seconds late (the probe asks for gzip, as a browser does).
		{"gzip-buffer", []string{"--tick", "1ms", "--heartbeat", "1s", "--fault", "gzip-buffer"}, ExitFailed, map[int]report.Verdict{7: "fail"}},
		{"no-204", []string{"--heartbeat", "1s", "--fault", "no-204"}, ExitFailed, map[int]report.Verdict{12: "fail", 7: "pass"}},
		{"no-replay", []string{"--heartbeat", "1s", "--fault", "no-replay"}, ExitFailed, map[int]report.Verdict{9: "fail"}},
		{"no-retry", []string{"--heartbeat", "1s", "--fault", "no-retry"}, ExitOK, map[int]report.Verdict{22: "warn"}},
		// Ticks off, so that the stream is idle and only keep-alive comments can fill it.
		{"idle-with-heartbeat", []string{"--tick", "0", "--heartbeat", "1s"}, ExitOK, map[int]report.Verdict{8: "pass"}},
		{"no-heartbeat", []string{"--tick", "0", "--fault", "no-heartbeat"}, ExitOK, map[int]report.Verdict{8: "fail"}},
	}
	dir := t.TempDir()
	type outcome struct {
		code   int
		stdout string
		stderr string
		res    *report.Result
		err    error
	}
	results := make([]outcome, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		srv := startBinary(t, bin, tc.serve...)
		finishSession(t, srv.url, "finished")
		wg.Go(func() {
			env, out, errb := conformEnv()
			file := filepath.Join(dir, tc.name+".json")
			format := "table"
			if i%2 == 1 {
				format = "junit"
			}
			code := Main(context.Background(), []string{"conform",
				"--target", srv.url + "/sessions/conf/events",
				"--stop-url", srv.url + "/sessions/finished/events",
				"--idle", "3s", "--timeout", "5s", "--out", file, "--format", format}, env)
			r := outcome{code: code, stdout: out.String(), stderr: errb.String()}
			r.res, r.err = report.Load(file)
			results[i] = r
		})
	}
	wg.Wait()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := results[i]
			if r.err != nil {
				t.Fatalf("exit %d, result file: %v; stderr %s", r.code, r.err, r.stderr)
			}
			checks := r.res.Scenarios[0].Checks
			var table strings.Builder
			for _, c := range checks {
				fmt.Fprintf(&table, "  %-26s %-8s %-5s %s\n", c.Name, c.Level, c.Verdict, c.Measured)
			}
			if r.code != tc.wantExit {
				t.Errorf("exit %d, want %d", r.code, tc.wantExit)
			}
			for id, want := range tc.want {
				if got := checks[id-1].Verdict; got != want {
					t.Errorf("check %s: %s, want %s", checks[id-1].Name, got, want)
				}
			}
			if tc.name == "reference" {
				for _, c := range checks {
					if c.Level == report.LevelMust && c.Verdict == report.VerdictFail {
						t.Errorf("MUST check %s fails on the reference server", c.Name)
					}
				}
			}
			if i%2 == 1 && !strings.Contains(r.stdout, "<testsuite") {
				t.Errorf("--format junit wrote no testsuite")
			}
			if i%2 == 0 && !strings.Contains(r.stdout, "07 incremental-delivery") {
				t.Errorf("--format table lists no checks")
			}
			if t.Failed() {
				t.Logf("checks:\n%s", table.String())
			}
		})
	}
}
