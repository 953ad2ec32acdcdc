package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sseharness/sseharness/internal/tailbuf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

const (
	// workerStderrHead and workerStderrTail are how much of the start and the end of a
	// worker's stderr are kept to report its death (a crash says why at the start).
	workerStderrHead = 4 << 10
	workerStderrTail = 8 << 10
	// workerStopTimeout bounds how long a worker may take to end after SIGTERM (it
	// drains its streams and writes its result); then it is killed.
	workerStopTimeout = 30 * time.Second
	// maxWorkers bounds --workers: each is a whole process with its own runtime.
	maxWorkers = 256
)

// workerSnapshot is one live progress line of a worker, as a JSON line on its stdout.
type workerSnapshot struct {
	Worker    int     `json:"worker"`
	Scenario  string  `json:"scenario"`
	ElapsedMS int64   `json:"elapsed_ms"`
	Streams   int64   `json:"streams"`
	Open      int64   `json:"open"`
	Events    int64   `json:"events"`
	EventRate float64 `json:"event_rate"`
	Errors    int64   `json:"errors"`
	P99MS     float64 `json:"p99_ms"`
	P99OK     bool    `json:"p99_ok"`
	// Request streams (report.Snapshot's Req figures), when Requests.
	Requests     bool    `json:"requests,omitempty"`
	ReqStarted   int64   `json:"req_started,omitempty"`
	ReqStreaming int64   `json:"req_streaming,omitempty"`
	ReqCompleted int64   `json:"req_completed,omitempty"`
	ReqFailed    int64   `json:"req_failed,omitempty"`
	TTFTP99MS    float64 `json:"ttft_p99_ms,omitempty"`
	TTFTOK       bool    `json:"ttft_ok,omitempty"`
}

// snapshotWriter writes a worker's snapshots as JSON lines; safe for concurrent use.
type snapshotWriter struct {
	mu     sync.Mutex
	enc    *json.Encoder
	worker int
}

func (w *snapshotWriter) write(scenario string, s report.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(workerSnapshot{
		Worker: w.worker, Scenario: scenario, ElapsedMS: s.Elapsed.Milliseconds(),
		Streams: s.Streams, Open: s.Open, Events: s.Events, EventRate: s.EventRate, Errors: s.Errors,
		P99MS: float64(s.LatencyP99) / float64(time.Millisecond), P99OK: s.LatencyOK,
		Requests: s.Requests, ReqStarted: s.ReqStarted, ReqStreaming: s.ReqStreaming, ReqCompleted: s.ReqCompleted,
		ReqFailed: s.ReqFailed, TTFTP99MS: float64(s.TTFTP99) / float64(time.Millisecond), TTFTOK: s.TTFTOK,
	})
}

// defaultWorkers is how many processes streams need under the open-file limit: at
// least 1.
func defaultWorkers(streams int, lim runner.FDLimit) int {
	per := lim.MaxStreams()
	if per <= 0 || streams <= per {
		return 1
	}
	return min((streams+per-1)/per, maxWorkers)
}

// workerArgs are the arguments of worker i of n: the run's own, without --workers and
// --out, with its shard, the worker mode and its result file.
func workerArgs(args []string, i, n int, out string) []string {
	var kept []string
	for k := 0; k < len(args); k++ {
		a := args[k]
		if a == "--" {
			kept = append(kept, args[k:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "workers" || name == "out") {
			if !hasValue {
				k++ // the value is the next argument
			}
			continue
		}
		kept = append(kept, a)
	}
	return append([]string{"run", "--shard", fmt.Sprintf("%d/%d", i, n), "--worker", "--out", out}, kept...)
}

// workerProc is one worker process of `run --workers`.
type workerProc struct {
	childProc // done: the process has exited and its stdout is read
	index     int
	out       string
	stderr    *headTailBuffer
	err       error // the exit status, valid once done is closed
}

// died says why a worker that ended gave no usable result, "" when it did.
func (w *workerProc) died() string {
	code := 0
	if w.err != nil {
		var ee *exec.ExitError
		if !errors.As(w.err, &ee) || ee.ExitCode() < 0 {
			return exitText(w.err)
		}
		code = ee.ExitCode()
	}
	// 0 pass, 1 checks failed, 3 a scenario could not run: each leaves a result.
	if code != ExitOK && code != ExitFailed && code != ExitHarness {
		return exitText(w.err)
	}
	if _, err := os.Stat(w.out); err != nil {
		return fmt.Sprintf("%s without writing its result", exitText(w.err))
	}
	return ""
}

// workerRun is what runWorkers needs from run's flags.
type workerRun struct {
	args   []string // run's arguments as given
	n      int
	out    string
	render report.Renderer
	strict bool
	// startAt says the run was given --start-at (passed on to every worker); without
	// it the workers get a common one, workerStartDelay after they are started.
	startAt bool
}

// workerStartDelay is how long after starting its workers a run without --start-at
// has them open their streams: long enough for a process to start and be ready, so
// that every worker opens on one schedule.
const workerStartDelay = time.Second

// runWorkers runs `run` as n worker processes of this executable, each a shard, streams
// their live counts into one progress line and merges their results into one. A worker
// that dies (a signal, an unexpected exit code, no result) fails the run with exit 3
// and its stderr: never a silently smaller run.
func runWorkers(ctx context.Context, env *Env, wr workerRun) int {
	exe, err := os.Executable()
	if err != nil {
		return harnessError(env, "run", fmt.Errorf("find own executable to start the workers: %w", err))
	}
	dir, err := os.MkdirTemp("", "sseharness-workers-")
	if err != nil {
		return harnessError(env, "run", err)
	}
	defer os.RemoveAll(dir)

	args := wr.args
	if !wr.startAt {
		at := time.Now().Add(workerStartDelay).UTC().Format(time.RFC3339Nano)
		args = append([]string{"--start-at", at}, args...)
	}
	progress := newProgressLine(env)
	workers, err := startWorkers(exe, dir, args, wr.n, newWorkerProgress(wr.n, progress))
	if err != nil {
		return harnessError(env, "run", err)
	}
	fmt.Fprintf(env.Stderr, "sseharness run: %d workers started, each a shard of every scenario\n", wr.n)
	dead := awaitWorkers(ctx, workers)
	progress.end()
	if len(dead) > 0 {
		for _, w := range dead {
			fmt.Fprintf(env.Stderr, "sseharness run: worker %d of %d died (%s); its stderr:\n%s",
				w.index, wr.n, w.died(), indent(w.stderr.String()))
		}
		fmt.Fprintf(env.Stderr, "sseharness run: %d of %d workers died: the run has no result (a smaller run is not the one asked for)\n", len(dead), wr.n)
		return ExitHarness
	}
	shards := make([]*report.Result, 0, wr.n)
	for _, w := range workers {
		r, err := report.Load(w.out)
		if err != nil {
			return harnessError(env, "run", fmt.Errorf("worker %d of %d: %w", w.index, wr.n, err))
		}
		shards = append(shards, r)
	}
	res, err := report.Merge(shards)
	if err != nil {
		return harnessError(env, "run", err)
	}
	res.Shard = nil
	for _, s := range res.Scenarios {
		fmt.Fprintf(env.Stderr, "%-22s %s (%.1fs, %d workers)\n", s.Name, s.Verdict, s.End.Sub(s.Start).Seconds(), wr.n)
	}
	return finishRun(ctx, env, res, wr.out, wr.render, wr.strict)
}

// startWorkers starts n workers of exe with args, each writing its result in dir and
// its live counts to live. A worker that cannot start stops those started.
func startWorkers(exe, dir string, args []string, n int, live *workerProgress) ([]*workerProc, error) {
	var workers []*workerProc
	for i := 0; i < n; i++ {
		w := &workerProc{index: i, out: filepath.Join(dir, fmt.Sprintf("worker-%d.json", i)),
			stderr: &headTailBuffer{tail: tailbuf.New(workerStderrTail)}, childProc: childProc{done: make(chan struct{})}}
		w.cmd = exec.Command(exe, workerArgs(args, i, n, w.out)...)
		w.cmd.Stderr = w.stderr
		w.cmd.SysProcAttr = childProcAttr()
		stdout, err := w.cmd.StdoutPipe()
		if err == nil {
			err = w.cmd.Start()
		}
		if err != nil {
			stopWorkers(workers)
			return nil, fmt.Errorf("start worker %d of %d: %w", i, n, err)
		}
		go func() {
			live.read(stdout)
			w.err = w.cmd.Wait()
			close(w.done)
		}()
		workers = append(workers, w)
	}
	return workers, nil
}

// awaitWorkers waits for every worker; the first that dies, or ctx ending, stops the
// others. It returns the workers that died, in index order.
func awaitWorkers(ctx context.Context, workers []*workerProc) []*workerProc {
	ended := make(chan *workerProc, len(workers))
	for _, w := range workers {
		go func() {
			<-w.done
			ended <- w
		}()
	}
	var dead []*workerProc
	stopping := false
	stop := func() {
		if !stopping {
			stopping = true
			go stopWorkers(workers)
		}
	}
	cancelled := ctx.Done()
	for range workers {
		var w *workerProc
		select {
		case w = <-ended:
		case <-cancelled:
			cancelled = nil
			stop()
			w = <-ended
		}
		if w.died() != "" {
			dead = append(dead, w)
			stop()
		}
	}
	sort.Slice(dead, func(a, b int) bool { return dead[a].index < dead[b].index })
	return dead
}

// stopWorkers asks every worker still running to end (SIGTERM: it drains and writes
// its result) and kills those still there after workerStopTimeout.
func stopWorkers(ws []*workerProc) { stopProcs(ws, workerStopTimeout) }

func indent(s string) string {
	if strings.TrimSpace(s) == "" {
		return "    (nothing)\n"
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// workerProgress sums the workers' latest snapshots into one progress line.
type workerProgress struct {
	mu     sync.Mutex
	n      int
	latest map[int]workerSnapshot
	line   *progressLine
	last   time.Time
}

func newWorkerProgress(n int, line *progressLine) *workerProgress {
	return &workerProgress{n: n, latest: map[int]workerSnapshot{}, line: line}
}

// read consumes a worker's stdout: JSON snapshot lines (at most 64 KiB each; anything
// else is ignored) until it closes.
func (p *workerProgress) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		var s workerSnapshot
		if json.Unmarshal(sc.Bytes(), &s) != nil {
			continue
		}
		p.add(s)
	}
	_, _ = io.Copy(io.Discard, r) // a line past the limit: keep the pipe drained
}

func (p *workerProgress) add(s workerSnapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latest[s.Worker] = s
	if now := time.Now(); now.Sub(p.last) >= 250*time.Millisecond {
		p.last = now
		p.line.update(p.sumLocked())
	}
}

// sumLocked is the progress line: counts add up over the workers; the p99 is the worst
// worker's (percentiles do not add). Request streams show request figures.
func (p *workerProgress) sumLocked() string {
	var t workerSnapshot
	var scen []string
	seen := map[string]bool{}
	p99, ttft := "n/a", "n/a"
	worst, worstTTFT := 0.0, 0.0
	for _, s := range p.latest {
		t.Streams += s.Streams
		t.Open += s.Open
		t.Events += s.Events
		t.EventRate += s.EventRate
		t.Errors += s.Errors
		t.ElapsedMS = max(t.ElapsedMS, s.ElapsedMS)
		t.Requests = t.Requests || s.Requests
		t.ReqStarted += s.ReqStarted
		t.ReqStreaming += s.ReqStreaming
		t.ReqCompleted += s.ReqCompleted
		t.ReqFailed += s.ReqFailed
		if s.P99OK && s.P99MS >= worst {
			worst = s.P99MS
			p99 = fmtDurationMS(s.P99MS)
		}
		if s.TTFTOK && s.TTFTP99MS >= worstTTFT {
			worstTTFT = s.TTFTP99MS
			ttft = fmtDurationMS(s.TTFTP99MS)
		}
		if !seen[s.Scenario] {
			seen[s.Scenario] = true
			scen = append(scen, s.Scenario)
		}
	}
	sort.Strings(scen)
	head := fmt.Sprintf("%s: %d/%d workers  %s", strings.Join(scen, ","), len(p.latest), p.n, (time.Duration(t.ElapsedMS) * time.Millisecond).Truncate(time.Second))
	if t.Requests {
		return fmt.Sprintf("%s  requests %d started (%d streaming)  %d completed  %d failed  worst worker ttft p99 %s",
			head, t.ReqStarted, t.ReqStreaming, t.ReqCompleted, t.ReqFailed, ttft)
	}
	return fmt.Sprintf("%s  streams %d (open %d)  events %d (%.0f/s)  worst worker p99 latency %s  errors %d",
		head, t.Streams, t.Open, t.Events, t.EventRate, p99, t.Errors)
}

func fmtDurationMS(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Microsecond).String()
}

// finishRun writes, renders and judges a whole result as run does.
func finishRun(ctx context.Context, env *Env, res *report.Result, out string, render report.Renderer, strict bool) int {
	if out != "" {
		if err := report.Save(out, res); err != nil {
			fmt.Fprintf(env.Stderr, "sseharness run: write %s: %v\n", out, err)
			return ExitHarness
		}
	}
	if err := render(env.Stdout, res); err != nil {
		return harnessError(env, "run", err)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(env.Stderr, "sseharness run: interrupted; the results above cover what ran")
	}
	for _, s := range res.Scenarios {
		if strings.HasPrefix(s.Error, "target unreachable") || strings.Contains(s.Error, ": target unreachable") {
			fmt.Fprintf(env.Stderr, "sseharness run: %s: %s\n", s.Name, s.Error)
		}
	}
	if un := res.Unjudged(); len(un) > 0 {
		fmt.Fprintf(env.Stderr, "sseharness run: %d of %d scenarios could not be judged: %s\n", len(un), len(res.Scenarios), strings.Join(un, " | "))
	}
	code := exitFor(res)
	if strict && code == ExitOK {
		if n := res.NotApplicable(); n > 0 {
			fmt.Fprintf(env.Stderr, "sseharness run: --strict: %d checks could not be judged (n/a)\n", n)
			code = ExitFailed
		}
	}
	return code
}

// resolveWorkers decides how many worker processes a run uses: the --workers flag, or
// (0) as many as the streams need under the open-file limit. A worker, or a shard, is
// one process. More than one needs --target: each worker would otherwise start a
// reference server of its own.
func resolveWorkers(flag int, workerMode bool, out string, sh runner.Shard, embedded bool, streams int, lim runner.FDLimit, limErr error) (int, error) {
	var probs []string
	switch {
	case flag < 0 || flag > maxWorkers:
		probs = append(probs, fmt.Sprintf("--workers %d: want 0 (automatic) to %d", flag, maxWorkers))
	case flag > 1 && (workerMode || sh.Count > 1):
		probs = append(probs, "--workers with --shard: each worker is a shard; give one or the other")
	case flag > 1 && embedded:
		probs = append(probs, "--workers needs --target: start 'sseharness serve --procs N' and point --target at it, so that every worker loads the same server")
	}
	if workerMode && (sh.Count < 1 || out == "") {
		probs = append(probs, "--worker is internal to --workers: it needs --shard and --out")
	}
	if len(probs) > 0 {
		return 0, errors.New(strings.Join(probs, "; "))
	}
	n := flag
	if n == 0 {
		n = 1
		if !workerMode && sh.Count <= 1 && !embedded && limErr == nil {
			n = defaultWorkers(streams, lim)
		}
	}
	return n, nil
}

// shardStreams is how many of streams one shard opens (rounded up).
func shardStreams(streams int, sh runner.Shard) int {
	if sh.Count <= 1 {
		return streams
	}
	return (streams + sh.Count - 1) / sh.Count
}

// headTailBuffer keeps the first workerStderrHead bytes written to it and the last
// workerStderrTail after them.
type headTailBuffer struct {
	mu   sync.Mutex
	head []byte
	tail *tailbuf.Buffer
}

func (b *headTailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := workerStderrHead - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) > 0 {
		_, _ = b.tail.Write(p)
	}
	return n, nil
}

func (b *headTailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.head)
	if t := b.tail.String(); t != "" {
		s += t
	}
	return s
}
