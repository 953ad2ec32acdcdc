// Package scenarios_test is the end-to-end proof that the harness can fail: every
// scenario passes against the reference server and fails, on the check that names the
// fault, against each fault mode it claims to catch. It runs the real binary, as users do.
package scenarios_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/scenarios"
)

// binary is the sseharness built once for the whole package by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sseharness-proof-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "sseharness")
	build := exec.Command("go", "build", "-o", binary, "github.com/sseharness/sseharness")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sseharness:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary with args, bounded in time, and returns its exit code, output and
// the result file it wrote.
func run(t *testing.T, timeout time.Duration, args ...string) (int, string, *report.Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"run", "--out", out}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v\n%s", args, err, buf.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("run %v did not finish within %s\n%s", args, timeout, buf.String())
	}
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("run %v wrote no readable result (exit %d): %v\n%s", args, code, err, buf.String())
	}
	return code, buf.String(), res
}

func scenario(t *testing.T, res *report.Result, name string) report.ScenarioResult {
	t.Helper()
	for _, s := range res.Scenarios {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("result has no scenario %s", name)
	return report.ScenarioResult{}
}

func check(t *testing.T, s report.ScenarioResult, name string) report.Check {
	t.Helper()
	for _, c := range s.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("scenario %s has no check %s", s.Name, name)
	return report.Check{}
}

func ci() bool { return os.Getenv("CI") == "true" }

func nginxInstalled(t *testing.T) bool {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if _, err := exec.LookPath(p); err == nil {
			return true
		}
	}
	if ci() {
		t.Errorf("nginx is not installed, and CI=true requires the real-proxy path (apt-get install nginx-light)")
	}
	return false
}

// TestReferencePassesEveryScenario: the main job, `sseharness run` with no arguments,
// passes against the embedded reference server, every scenario and every check.
func TestReferencePassesEveryScenario(t *testing.T) {
	code, out, res := run(t, 5*time.Minute)
	if code != 0 {
		t.Fatalf("run against the reference server: exit %d, want 0\n%s", code, out)
	}
	if len(res.Scenarios) != len(scenarios.All()) {
		t.Fatalf("ran %d scenarios, want %d", len(res.Scenarios), len(scenarios.All()))
	}
	haveNginx := nginxInstalled(t)
	for _, s := range res.Scenarios {
		if s.Verdict != report.VerdictPass {
			t.Errorf("%s: verdict %s, want pass", s.Name, s.Verdict)
		}
		for _, c := range s.Checks {
			if c.Verdict == report.VerdictPass || c.Name == report.CheckRunnerHealthy {
				continue // the runner's own health is the test machine's, not the server's
			}
			// The only checks allowed to be n/a against the embedded server: none, except
			// nginx's when nginx is missing outside CI.
			if (c.Name == "nginx-added-latency" || c.Name == "nginx-kept-open") && !haveNginx && c.Verdict == report.VerdictNotApplicable {
				t.Logf("nginx not installed: %s is n/a (%s)", c.Name, c.Detail)
				continue
			}
			t.Errorf("%s/%s: %s (%s; %s)", s.Name, c.Name, c.Verdict, c.Measured, c.Detail)
		}
	}
}

// proof is one row of the proof table: the scenario fails against the fault, on check.
type proof struct {
	scenario, fault, check string
}

// proofs is the scenario x fault table; the README carries the same table.
func proofs() []proof {
	return []proof{
		{"mid-stream-disconnect", "leak-on-disconnect", "senders-stopped"},
		{"same-id-reconnect", "no-replace", "one-sender"},
		{"same-id-reconnect", "no-replace", "old-stream-ended"},
		{"resume", "no-replay", "ids-exactly-once"},
		{"reconnect-storm", "no-replay", "no-lost-ids"},
		{"proxy-buffering", "no-flush", "direct-delivery"},
		{"proxy-buffering", "no-flush", "builtin-proxy-added-latency"},
		{"proxy-buffering", "gzip-buffer", "direct-delivery"},
		{"half-open", "no-heartbeat", "reaped-stopped-readers"},
		{"half-open", "no-lifetime", "reaped-blackholed"},
		{"completion", "no-204", "stops-on-204"},
		{"starvation", "pool=10", "first-event"},
		{"quiet-open", "late-head", "head-within"},
		{"hold", "cut-after=3s", "no-abrupt-end"},
		{"idle-timeout", "no-heartbeat", "builtin-proxy-kept-open"},
		{"idle-timeout", "no-heartbeat", "longest-silence"},
		{"request-stream", "token-batch=4", "tokens-per-event"},
		{"request-stream", "no-done", "terminated"},
		{"request-stream", "stream-error=20", "no-error-events"},
		{"request-stream", "gen-slots=2", "ttft-p99"},
		{"request-stream", "late-head", "headers-p50"},
	}
}

// TestEachFaultIsCaught: every scenario fails against each fault it claims to catch, on
// the check that names the fault, and says so in its output.
func TestEachFaultIsCaught(t *testing.T) {
	type key struct{ scenario, fault string }
	want := map[key][]string{}
	var order []key
	for _, p := range proofs() {
		k := key{p.scenario, p.fault}
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		want[k] = append(want[k], p.check)
	}
	// Every fault a scenario declares must be in the table.
	for _, s := range scenarios.All() {
		for _, f := range s.Catches {
			if strings.Contains(f, " ") { // "plain HTTP/1.1 ...": proved by its own test
				continue
			}
			if f == "pool=N" {
				f = "pool=10"
			}
			if f == "cut-after=D" {
				f = "cut-after=3s" // shorter than hold's 10s window
			}
			if _, ok := want[key{s.Name, f}]; !ok {
				t.Errorf("scenario %s claims to catch %s but the proof table lacks it", s.Name, f)
			}
		}
	}
	for _, k := range order {
		t.Run(k.scenario+"/"+k.fault, func(t *testing.T) {
			code, out, res := run(t, 2*time.Minute, "--fault", k.fault, k.scenario)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (checks failed)\n%s", code, out)
			}
			s := scenario(t, res, k.scenario)
			for _, name := range want[k] {
				c := check(t, s, name)
				if c.Verdict != report.VerdictFail {
					t.Errorf("check %s: %s (%s), want fail", name, c.Verdict, c.Measured)
				}
				if !regexp.MustCompile(`(?m)^\S.*` + regexp.QuoteMeta(name)).MatchString(out) {
					t.Errorf("the output does not name the failing check %s", name)
				}
			}
		})
	}
}

// TestH2StreamCapBeyondTheServersCap: h2-stream-cap passes against the reference's
// generous default (TestReferencePassesEveryScenario) and fails when the embedded server
// advertises SETTINGS_MAX_CONCURRENT_STREAMS 100 to browsers opening 120 streams each,
// naming how many waited.
func TestH2StreamCapBeyondTheServersCap(t *testing.T) {
	code, out, res := run(t, 2*time.Minute, "--server-arg=--h2-max-streams=100", "h2-stream-cap")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (checks failed)\n%s", code, out)
	}
	s := scenario(t, res, "h2-stream-cap")
	c := check(t, s, "streams-open")
	if c.Verdict != report.VerdictFail {
		t.Fatalf("streams-open: %s (%s), want fail", c.Verdict, c.Measured)
	}
	browsers := int64(s.Load.Requested.Browsers)
	if s.Metrics.Streams != 100*browsers || !strings.Contains(c.Measured, fmt.Sprintf("unopened_streams %d", 20*browsers)) {
		t.Errorf("%d streams opened, measured %q: want 100 per browser open and 20 per browser named waiting", s.Metrics.Streams, c.Measured)
	}
	if !strings.Contains(s.Description, "waiting") {
		t.Errorf("the result does not say the streams waited: %s", s.Description)
	}
}

// TestSixConnectionLimitOverHTTP1: the same scenario that passes over h2 (the embedded
// server serves HTTPS with HTTP/2 for it) fails against a plain HTTP/1.1 server.
func TestSixConnectionLimitOverHTTP1(t *testing.T) {
	srv := startReference(t)
	code, out, res := run(t, 2*time.Minute, "--target", srv.URL, "six-connection-limit")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	s := scenario(t, res, "six-connection-limit")
	if c := check(t, s, "streams-open"); c.Verdict != report.VerdictFail {
		t.Errorf("streams-open: %s (%s), want fail over HTTP/1.1", c.Verdict, c.Measured)
	}
	if c := check(t, s, "ordinary-request"); c.Verdict != report.VerdictFail {
		t.Errorf("ordinary-request: %s (%s), want fail over HTTP/1.1", c.Verdict, c.Measured)
	}
	if s.Metrics.Protocols["HTTP/1.1"] == 0 {
		t.Errorf("protocols %v: want HTTP/1.1", s.Metrics.Protocols)
	}
}

var batchedRE = regexp.MustCompile(`(\d+) events, (\d+)% arrived in batches`)

// batched reads "N events, P% arrived in batches" from a proxy check's detail.
func batched(t *testing.T, c report.Check) (events, pct int) {
	t.Helper()
	m := batchedRE.FindStringSubmatch(c.Detail)
	if m == nil {
		return 0, 0
	}
	events, _ = strconv.Atoi(m[1])
	pct, _ = strconv.Atoi(m[2])
	return events, pct
}

// TestProxyBufferingThroughNginx: through a real nginx with stock buffering, the no-flush
// server's events arrive late and in batches; the correct server's do not.
func TestProxyBufferingThroughNginx(t *testing.T) {
	if !nginxInstalled(t) {
		t.Skip("nginx is not installed (apt-get install nginx-light); the real-proxy path is not exercised")
	}
	code, out, good := run(t, 2*time.Minute, "--hold", "12s", "proxy-buffering")
	if code != 0 {
		t.Fatalf("correct server: exit %d\n%s", code, out)
	}
	c := check(t, scenario(t, good, "proxy-buffering"), "nginx-added-latency")
	if c.Verdict != report.VerdictPass {
		t.Fatalf("correct server through nginx: %s (%s)", c.Verdict, c.Measured)
	}
	if n, pct := batched(t, c); n == 0 || pct > 20 {
		t.Errorf("correct server through nginx: %d events, %d%% in batches; want them one by one (%s)", n, pct, c.Detail)
	}
	if p99, ok := p99MS(c.Measured); !ok || p99 >= 1000 {
		t.Errorf("correct server through nginx: %q, want a p99 well under a second", c.Measured)
	}

	code, out, bad := run(t, 2*time.Minute, "--hold", "12s", "--fault", "no-flush", "proxy-buffering")
	if code != 1 {
		t.Fatalf("no-flush server: exit %d, want 1\n%s", code, out)
	}
	s := scenario(t, bad, "proxy-buffering")
	if c := check(t, s, "direct-delivery"); c.Verdict != report.VerdictFail {
		t.Errorf("no-flush direct: %s (%s), want fail", c.Verdict, c.Measured)
	}
	// Within 12 s the no-flush server's 2 KiB buffer fills a few times: whatever arrives through
	// nginx comes in one batch, seconds late (or nothing arrives at all).
	c = check(t, s, "nginx-added-latency")
	n, pct := batched(t, c)
	p99, timed := p99MS(c.Measured)
	switch {
	case n == 0 && c.Verdict == report.VerdictFail:
		t.Logf("no-flush through nginx: nothing arrived in 12s (%s)", c.Measured)
	case n > 0 && pct >= 50 && timed && p99 >= 1000:
		t.Logf("no-flush through nginx: %d events, %d%% in batches, p99 %dms", n, pct, p99)
	default:
		t.Errorf("no-flush through nginx: want late batches, got %q / %q", c.Measured, c.Detail)
	}
}

// TestIdleTimeoutThroughNginx: through a real nginx whose proxy_read_timeout is the
// idle timeout (docker/nginx/idle-timeout.conf), quiet streams of the correct server
// survive several timeouts on its heartbeats; the no-heartbeat server's are cut.
func TestIdleTimeoutThroughNginx(t *testing.T) {
	if !nginxInstalled(t) {
		t.Skip("nginx is not installed (apt-get install nginx-light); the real-proxy path is not exercised")
	}
	code, out, good := run(t, 2*time.Minute, "idle-timeout")
	if code != 0 {
		t.Fatalf("correct server: exit %d\n%s", code, out)
	}
	if c := check(t, scenario(t, good, "idle-timeout"), "nginx-kept-open"); c.Verdict != report.VerdictPass {
		t.Fatalf("correct server through nginx: %s (%s; %s)", c.Verdict, c.Measured, c.Detail)
	}
	code, out, bad := run(t, 2*time.Minute, "--fault", "no-heartbeat", "idle-timeout")
	if code != 1 {
		t.Fatalf("no-heartbeat server: exit %d, want 1\n%s", code, out)
	}
	s := scenario(t, bad, "idle-timeout")
	if c := check(t, s, "nginx-kept-open"); c.Verdict != report.VerdictFail {
		t.Errorf("no-heartbeat through nginx: %s (%s), want fail", c.Verdict, c.Measured)
	}
	for _, g := range s.Groups {
		if g.Name == "nginx" && g.Metrics.CloseReasons["network-error"]+g.Metrics.CloseReasons["eof"] == 0 {
			t.Errorf("no-heartbeat through nginx: no stream was cut (close reasons %v)", g.Metrics.CloseReasons)
		}
	}
}

var p99RE = regexp.MustCompile(`\(nginx latency_p99 ([^,]+),`)

// p99MS reads the nginx path's p99 in milliseconds from the measured value of the
// rule "latency_p99 of nginx minus latency_p99 of direct".
func p99MS(measured string) (int, bool) {
	m := p99RE.FindStringSubmatch(measured)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	return int(d / time.Millisecond), err == nil
}

// mergeShards saves the shards' results in a temporary directory and merges them with
// `report merge`, whose exit code must be want; it returns the merged result.
func mergeShards(t *testing.T, shards []*report.Result, want int) *report.Result {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, res := range shards {
		f := filepath.Join(dir, fmt.Sprintf("shard-%d.json", i))
		if err := report.Save(f, res); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	merged := filepath.Join(dir, "merged.json")
	cmd := exec.Command(binary, append([]string{"report", "merge", merged}, files...)...)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != want {
		t.Fatalf("report merge: exit %d (%v), want %d\n%s", code, err, want, out)
	}
	res, err := report.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestShardsMergeIntoOneRun: two shards of one hold run against one server, merged with
// `report merge`, add up to the whole run: every stream once, no session shared.
func TestShardsMergeIntoOneRun(t *testing.T) {
	srv := startReference(t, "--tick", "200ms")
	shards := make([]*report.Result, 2)
	var events int64
	for i := range 2 {
		code, out, res := run(t, 2*time.Minute, "--target", srv.URL, "--streams", "21", "--hold", "2s", "--shard", fmt.Sprintf("%d/2", i), "hold")
		if code != 0 {
			t.Fatalf("shard %d: exit %d\n%s", i, code, out)
		}
		if res.Shard == nil || res.Shard.Index != i || res.Shard.Count != 2 {
			t.Fatalf("shard %d: result shard %+v", i, res.Shard)
		}
		events += scenario(t, res, "hold").Metrics.Events
		shards[i] = res
	}
	s := scenario(t, mergeShards(t, shards, 0), "hold")
	if s.Metrics.Streams != 21 {
		t.Errorf("merged streams %d, want 21 (shards disjoint and complete)", s.Metrics.Streams)
	}
	if s.Metrics.Events != events {
		t.Errorf("merged events %d, want the shards' sum %d", s.Metrics.Events, events)
	}
	// Count checks are rules over the metrics: judged again on the merged figures.
	for _, name := range []string{"errors", "no-missing-ids", "no-duplicate-ids"} {
		if c := check(t, s, name); c.Merged || c.Rule == nil || c.Verdict != report.VerdictPass {
			t.Errorf("merged %s: verdict %s, merged-as-worst %v, rule %v; want a pass re-evaluated from the merged metrics", name, c.Verdict, c.Merged, c.Rule)
		}
	}
}

// TestInterruptStillYieldsTheResult: Ctrl-C during a run stops the load, drains the
// streams and still prints and writes the result, with the interrupted scenario saying so.
func TestInterruptStillYieldsTheResult(t *testing.T) {
	srv := startReference(t)
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(binary, "run", "--target", srv.URL, "--streams", "20", "--hold", "60s", "--out", out, "hold")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Interrupt once every stream is open on the server.
	deadline := time.Now().Add(30 * time.Second)
	for openStreams(t, srv.URL) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the run never opened its 20 streams\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not stop within 20s of Ctrl-C\n%s", buf.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit %d, want 3 (the scenario could not finish)", code)
	}
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("no result file after Ctrl-C: %v\n%s", err, buf.String())
	}
	s := scenario(t, res, "hold")
	if !strings.Contains(s.Error, "interrupted") || s.Metrics.Streams != 20 {
		t.Errorf("result after Ctrl-C: error %q, streams %d; want interrupted with 20 streams measured", s.Error, s.Metrics.Streams)
	}
	if !strings.Contains(buf.String(), "interrupted") {
		t.Errorf("the printed result does not say it was interrupted:\n%s", buf.String())
	}
	if n := openStreams(t, srv.URL); n != 0 {
		// The run closed its streams before exiting; the server may take a moment.
		deadline := time.Now().Add(5 * time.Second)
		for openStreams(t, srv.URL) != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := openStreams(t, srv.URL); n != 0 {
			t.Errorf("%d streams still open on the server after the run exited", n)
		}
	}
}

// openStreams reads sseref_streams_open from a reference server.
func openStreams(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^sseref_streams_open (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no sseref_streams_open in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestChecksWithoutAFaultCanFail: the scenarios no fault mode targets still judge what
// they measure: a starved hold, and limits no real target meets, fail their checks.
func TestChecksWithoutAFaultCanFail(t *testing.T) {
	for _, tc := range []struct {
		scenario, check string
		args            []string
	}{
		{"hold", "every-event", []string{"--fault", "pool=10", "--streams", "20", "--hold", "2s"}},
		{"slow-consumer", "fast-p99", []string{"--threshold", "slow-consumer/fast-p99=1ns", "--hold", "2s"}},
		{"capacity", "sustained-steps", []string{"--slo-p99", "1ns", "--capacity-steps", "20", "--hold", "1s"}},
		{"request-stream", "itl-p99", []string{"--slo", "itl=1ms", "--requests", "10"}},
		{"request-capacity", "sustained-rates", []string{"--slo", "ttft=1ms", "--rate", "4", "--duration", "1s"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			code, out, res := run(t, 2*time.Minute, append(tc.args, tc.scenario)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			if c := check(t, scenario(t, res, tc.scenario), tc.check); c.Verdict != report.VerdictFail {
				t.Errorf("%s: %s (%s), want fail", tc.check, c.Verdict, c.Measured)
			}
		})
	}
}

// TestMergedShardsJudgeEveryCheck: every scenario run as two shards and merged with
// `report merge` is judged again from the merged figures, check by check (no check
// takes a shard's verdict), with the verdicts a single run gets: every check passes
// against the reference server, and a fault fails the same checks merged as alone.
func TestMergedShardsJudgeEveryCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int // exit code of each shard and of the merge
	}{
		{"reference", nil, 0},
		{"no-replay", []string{"--fault", "no-replay", "resume", "reconnect-storm"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shards := make([]*report.Result, 2)
			for i := range 2 {
				code, out, res := run(t, 5*time.Minute, append([]string{"--shard", fmt.Sprintf("%d/2", i)}, tc.args...)...)
				if code != tc.want {
					t.Fatalf("shard %d: exit %d, want %d\n%s", i, code, tc.want, out)
				}
				shards[i] = res
			}
			res := mergeShards(t, shards, tc.want)
			for _, s := range res.Scenarios {
				for _, c := range s.Checks {
					if c.Merged || (c.Rule == nil && c.Verdict != report.VerdictNotApplicable) {
						t.Errorf("%s/%s: not re-judged from the merged figures (merged %v, rule %v)", s.Name, c.Name, c.Merged, c.Rule)
					}
					// A single run's verdict: pass against the reference (the nginx check
					// may be n/a where nginx is missing); with the fault, what each shard
					// found alone.
					want := report.VerdictPass
					switch {
					case c.Name == report.CheckRunnerHealthy:
						// The runner's own health is the test machine's: merged, it is
						// the worst shard's.
						want = check(t, scenario(t, shards[0], s.Name), c.Name).Verdict
						if v := check(t, scenario(t, shards[1], s.Name), c.Name).Verdict; v == report.VerdictFail || want == report.VerdictNotApplicable {
							want = v
						}
					case tc.want != 0:
						want = check(t, scenario(t, shards[0], s.Name), c.Name).Verdict
					}
					if c.Verdict != want && !(c.Name == "nginx-added-latency" && c.Verdict == report.VerdictNotApplicable) {
						t.Errorf("%s/%s: merged %s (%s; %s), want %s", s.Name, c.Name, c.Verdict, c.Measured, c.Detail, want)
					}
				}
			}
			if tc.want != 0 {
				for _, p := range proofs() {
					if p.fault != "no-replay" {
						continue
					}
					if c := check(t, scenario(t, res, p.scenario), p.check); c.Verdict != report.VerdictFail {
						t.Errorf("merged %s/%s: %s, want fail", p.scenario, p.check, c.Verdict)
					}
				}
			}
		})
	}
}

// startReference starts `sseharness serve` with args on a free port for the test; it is
// stopped (6 s to drain) when the test ends.
func startReference(t *testing.T, args ...string) *scenarios.ServerProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := scenarios.StartServer(ctx, binary, args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(6 * time.Second) })
	return srv
}
