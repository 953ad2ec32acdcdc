package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

func TestWorkerArgs(t *testing.T) {
	got := workerArgs([]string{"--target", "http://x", "--workers", "3", "--out=r.json", "hold", "-workers=3", "--out", "o.json", "--streams", "9"}, 1, 3, "/tmp/w1.json")
	want := "run --shard 1/3 --worker --out /tmp/w1.json --target http://x hold --streams 9"
	if strings.Join(got, " ") != want {
		t.Errorf("worker args %q, want %q", strings.Join(got, " "), want)
	}
}

func TestDefaultWorkers(t *testing.T) {
	lim := runner.FDLimit{Soft: 1064, Hard: 4096} // 1,000 streams a process
	for _, tc := range []struct{ streams, want int }{{0, 1}, {1000, 1}, {1001, 2}, {3000, 3}, {100000, 100}} {
		if got := defaultWorkers(tc.streams, lim); got != tc.want {
			t.Errorf("%d streams: %d workers, want %d", tc.streams, got, tc.want)
		}
	}
	if got := defaultWorkers(10, runner.FDLimit{Soft: 10}); got != 1 {
		t.Errorf("a limit below the headroom: %d workers, want 1 (the stream check says why)", got)
	}
}

func TestRunWorkersUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--workers", "3", "hold"}, "--workers needs --target"},
		{[]string{"run", "--target", "http://127.0.0.1:1", "--workers", "2", "--shard", "0/2", "hold"}, "--workers with --shard"},
		{[]string{"run", "--target", "http://127.0.0.1:1", "--workers", "-1", "hold"}, "--workers -1"},
		{[]string{"run", "--target", "http://127.0.0.1:1", "--worker", "hold"}, "--worker is internal"},
	} {
		var out bytes.Buffer
		env, stderr := serveTestEnv(&out)
		if code := Main(t.Context(), tc.args, env); code != ExitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// runBinary runs the sseharness binary with args and returns the exit code and output.
type runningBinary struct {
	cmd            *exec.Cmd
	stdout, stderr *serveTestBuffer
	exited         chan struct{}
	err            error
}

func startRunBinary(t *testing.T, bin string, args ...string) *runningBinary {
	t.Helper()
	r := &runningBinary{stdout: &serveTestBuffer{}, stderr: &serveTestBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
	})
	return r
}

func (r *runningBinary) await(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(d):
		t.Fatalf("run did not exit within %v; stderr: %s", d, r.stderr)
	}
	if ee, ok := r.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return 0
}

// children lists the pids of pid's child processes (Linux /proc: each thread lists
// the children it forked).
func children(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	if err != nil || len(tasks) == 0 {
		t.Skipf("no /proc children lists: %v", err)
	}
	var out []int
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
	}
	return out
}

func TestRunWorkersBinary(t *testing.T) {
	bin := binaryTest(t)
	srv := startBinary(t, bin, "--tick", "200ms")

	t.Run("three workers merge into exactly the streams asked for", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "merged.json")
		r := startRunBinary(t, bin, "run", "--target", srv.url, "--workers", "3", "--streams", "10", "--hold", "2s",
			"--out", out, "--runner-max-delay", "500ms", "hold")
		code := r.await(t, 90*time.Second)
		res, err := report.Load(out)
		if err != nil {
			t.Fatalf("exit %d, no merged result: %v\nstderr: %s", code, err, r.stderr)
		}
		if code != ExitOK || res.Verdict != report.VerdictPass {
			t.Errorf("exit %d, verdict %s; want 0, pass\nstderr: %s\n%s", code, res.Verdict, r.stderr, r.stdout)
		}
		s := res.Scenarios[0]
		if res.MergedShards != 3 || s.Load.Requested.Streams != 10 || s.Metrics.Streams != 10 || s.Metrics.StreamsWithEvents != 10 {
			t.Errorf("merged %d shards, requested %d, opened %d, with events %d; want 3 and 10 each",
				res.MergedShards, s.Load.Requested.Streams, s.Metrics.Streams, s.Metrics.StreamsWithEvents)
		}
		if len(res.Runner) != 3 {
			t.Errorf("%d runner summaries, want one per worker", len(res.Runner))
		}
		if !strings.Contains(r.stdout.String(), "merged from 3 shards") {
			t.Errorf("the table does not say it merged 3 workers:\n%s", r.stdout)
		}
	})

	t.Run("a killed worker fails the run with exit 3 and its stderr", func(t *testing.T) {
		srv := startBinary(t, bin, "--tick", "200ms") // its own: the gauge below counts this run's streams alone
		r := startRunBinary(t, bin, "run", "--target", srv.url, "--workers", "3", "--streams", "6", "--hold", "60s", "hold")
		deadline := time.Now().Add(30 * time.Second)
		var kids []int
		for len(kids) < 3 && time.Now().Before(deadline) {
			kids = children(t, r.cmd.Process.Pid)
			time.Sleep(20 * time.Millisecond) // polling /proc
		}
		if len(kids) < 3 {
			t.Fatalf("workers %v, want 3", kids)
		}
		// Kill one in the middle of the hold, when every worker's streams are open.
		srv.awaitMetric(t, "sseref_streams_open", 30*time.Second, func(v float64) bool { return v >= 6 })
		// SIGQUIT: the Go runtime writes its goroutines to stderr and exits 2.
		if err := syscall.Kill(kids[1], syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
		code := r.await(t, 60*time.Second)
		stderr := r.stderr.String()
		if code != ExitHarness || !strings.Contains(stderr, "died (exit status 2)") || !strings.Contains(stderr, "SIGQUIT: quit") ||
			!strings.Contains(stderr, "workers died: the run has no result") {
			t.Errorf("exit %d, want 3 naming the dead worker with its stderr:\n%s", code, stderr)
		}
		for _, k := range kids {
			if err := syscall.Kill(k, 0); err == nil {
				t.Errorf("worker %d still runs after the run ended", k)
			}
		}
	})
}

// TestStartAtShardsOverlapFully: two shards started apart with one --start-at open
// their streams together; report merge reports the peak they achieved together, and
// each result says how late its shard began.
func TestStartAtShardsOverlapFully(t *testing.T) {
	bin := binaryTest(t)
	srv := startBinary(t, bin, "--tick", "200ms")
	dir := t.TempDir()
	// The second shard is started 4s after the first, later than a shard's streams live
	// (the 1s hold plus hold's 2s margin): only the common start makes them overlap.
	at := time.Now().Add(5 * time.Second).UTC().Format(time.RFC3339Nano)
	var runs []*runningBinary
	for i := range 2 {
		runs = append(runs, startRunBinary(t, bin, "run", "--target", srv.url, "--shard", fmt.Sprintf("%d/2", i),
			"--start-at", at, "--streams", "10", "--hold", "1s", "--runner-max-delay", "500ms",
			"--out", filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)), "hold"))
		if i == 0 {
			time.Sleep(4 * time.Second) // staging, not waiting for a condition: the second shard is scheduled late
		}
	}
	for i, r := range runs {
		if code := r.await(t, 90*time.Second); code != ExitOK {
			t.Fatalf("shard %d: exit %d\nstderr: %s", i, code, r.stderr)
		}
	}
	for i := range 2 {
		res, err := report.Load(filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Starts) != 1 || !res.Starts[0].Waited || res.Starts[0].Late() > time.Second {
			t.Errorf("shard %d start %+v, want a wait and a small lateness", i, res.Starts)
		}
	}
	merged := filepath.Join(dir, "merged.json")
	var stdout bytes.Buffer
	env, stderr := serveTestEnv(&stdout)
	if code := Main(t.Context(), []string{"report", "merge", merged, filepath.Join(dir, "shard-0.json"), filepath.Join(dir, "shard-1.json")}, env); code != ExitOK {
		t.Fatalf("report merge: exit %d\n%s%s", code, stdout.String(), stderr)
	}
	res, err := report.Load(merged)
	if err != nil {
		t.Fatal(err)
	}
	o := res.Scenarios[0].Overlap
	if o == nil || o.Peak != 10 || o.SumOfPeaks != 10 || !o.Full() || o.PeakShards != 2 || o.AllOpenMS < 1000 {
		t.Fatalf("overlap %+v, want a full peak of 10 streams from both shards held together for the 1s hold", o)
	}
	if !strings.Contains(stdout.String(), "shards overlapped fully: peak 10 concurrent streams of 10") ||
		!strings.Contains(stdout.String(), "start at "+at) {
		t.Errorf("report merge does not say the overlap and the start:\n%s", stdout.String())
	}
}

// TestWorkerProgressSumsTheWorkers: the progress line adds the workers' latest counts
// and names the worst worker's p99 (percentiles do not add); lines that are not
// snapshots are ignored.
func TestWorkerProgressSumsTheWorkers(t *testing.T) {
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	env.StderrIsTerminal = true
	p := newWorkerProgress(2, newProgressLine(env))
	p.read(strings.NewReader(`{"worker":0,"scenario":"hold","elapsed_ms":3000,"streams":5,"open":5,"events":50,"event_rate":5,"errors":1,"p99_ms":2,"p99_ok":true}
not json
{"worker":1,"scenario":"hold","elapsed_ms":2500,"streams":4,"open":3,"events":40,"event_rate":4,"errors":0,"p99_ms":7.5,"p99_ok":true}
`))
	wantProgressLine(t, p, "hold: 2/2 workers  3s  streams 9 (open 8)  events 90 (9/s)  worst worker p99 latency 7.5ms  errors 1")
	if !strings.Contains(stderr.String(), "hold: ") {
		t.Errorf("nothing written to the terminal: %q", stderr)
	}
}

// TestWorkerProgressShowsRequests: workers running request streams sum their request
// counts into the line, with the worst worker's TTFT p99, instead of stream counts.
func TestWorkerProgressShowsRequests(t *testing.T) {
	env, _ := serveTestEnv(&bytes.Buffer{})
	p := newWorkerProgress(2, newProgressLine(env))
	for i, s := range []report.Snapshot{
		{Elapsed: 2 * time.Second, Requests: true, ReqStarted: 10, ReqStreaming: 2, ReqCompleted: 7, ReqFailed: 1, TTFTP99: 120 * time.Millisecond, TTFTOK: true},
		{Elapsed: 2500 * time.Millisecond, Requests: true, ReqStarted: 9, ReqStreaming: 1, ReqCompleted: 8, TTFTP99: 310 * time.Millisecond, TTFTOK: true},
	} {
		var b bytes.Buffer
		(&snapshotWriter{enc: json.NewEncoder(&b), worker: i}).write("request-stream", s)
		p.read(&b)
	}
	wantProgressLine(t, p, "request-stream: 2/2 workers  2s  requests 19 started (3 streaming)  15 completed  1 failed  worst worker ttft p99 310ms")
}

func wantProgressLine(t *testing.T, p *workerProgress, want string) {
	t.Helper()
	p.mu.Lock()
	line := p.sumLocked()
	p.mu.Unlock()
	if line != want {
		t.Errorf("progress line\n%q, want\n%q", line, want)
	}
}

// TestWorkerProgressAtMostFourTimesASecond: on a fake clock (testing/synctest), workers
// that send a snapshot every 50 ms for 2 s rewrite the terminal line every 250 ms, 8
// times, not once per snapshot.
func TestWorkerProgressAtMostFourTimesASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env, stderr := serveTestEnv(&bytes.Buffer{})
		env.StderrIsTerminal = true
		p := newWorkerProgress(2, newProgressLine(env))
		for i := range 40 {
			p.add(workerSnapshot{Worker: i % 2, Scenario: "hold", Events: int64(i)})
			time.Sleep(50 * time.Millisecond)
		}
		if n := strings.Count(stderr.String(), "\r\033[K"); n != 8 {
			t.Errorf("%d progress lines in 2s of snapshots every 50ms, want 8", n)
		}
	})
}
