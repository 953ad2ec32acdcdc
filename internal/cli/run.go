package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sseharness/sseharness/internal/selfwatch"
	"github.com/sseharness/sseharness/internal/shards"
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/scenarios"
)

// runGCPercent is the Go GC target `run` uses unless GOGC is set.
const runGCPercent = 25

const (
	defaultStreamTemplate   = "{target}/sessions/{session}/events"
	defaultProgressTemplate = "{target}/sessions/{session}/progress"
)

// runConfig is everything `run` was asked, resolved; it goes into the result file.
type runConfig struct {
	Target           string            `json:"target"`
	Embedded         bool              `json:"embedded"`
	Faults           string            `json:"faults,omitempty"`
	Scenarios        []string          `json:"scenarios"`
	StreamTemplate   string            `json:"stream_url"`
	ProgressTemplate string            `json:"progress_url"`
	MetricsURL       string            `json:"metrics_url"`
	OrdinaryURL      string            `json:"ordinary_url"`
	Streams          int               `json:"streams,omitempty"`
	Hold             string            `json:"hold,omitempty"`
	Ramp             string            `json:"ramp,omitempty"`
	SLOP99           string            `json:"slo_p99,omitempty"`
	CapacitySteps    []int             `json:"capacity_steps,omitempty"`
	Thresholds       map[string]string `json:"thresholds,omitempty"`
	Insecure         bool              `json:"insecure"`
	Strict           bool              `json:"strict,omitempty"`
	NginxConf        string            `json:"nginx_conf"`
	// ServerArgs are the --server-arg flags passed on to the embedded server.
	ServerArgs []string `json:"server_args,omitempty"`
	// TargetDescription: send-time field, publish endpoint, request details (issue 11).
	TargetDescription targetConfig `json:"target_description"`
	// Scale (issue 14).
	SourceAddrs string `json:"source_addrs,omitempty"`
	// Requests are the request-stream scenarios' settings.
	Requests *requestRunConfig `json:"requests,omitempty"`
}

// runRun runs `sseharness run`: parse the flags, validate them together, execute the
// plan (in this process, or as --workers processes), render the result.
func runRun(ctx context.Context, env *Env, args []string) int {
	f, code, ok := parseRunFlags(env, args)
	if !ok {
		return code
	}
	p, err := f.Validate()
	if err != nil {
		return usageError(env, "run", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	for _, n := range p.notes {
		fmt.Fprintf(env.Stderr, "sseharness run: %s\n", n)
	}
	if env.Getenv("GOGC") == "" {
		// The runner's heap is long-lived per-stream state with a low allocation rate
		// (about one small allocation per event), so a tight collection target costs
		// little CPU and saves the default 100% headroom on every stream's memory.
		debug.SetGCPercent(runGCPercent)
	}
	if p.workers > 1 {
		return runWorkers(ctx, env, workerRun{args: args, n: p.workers, out: f.out, render: p.render, strict: f.strict, startAt: f.startAt != ""})
	}
	return p.execute(ctx, env)
}

// runSession is one process's execution of a plan: what watches it while it goes, and
// its result.
type runSession struct {
	p        *runPlan
	env      *Env
	exe      string // this executable, for the embedded server's child processes
	progress *progressLine
	trace    *traceWriter
	partial  *partialOut
	res      *report.Result
}

// execute runs every scenario of the plan in turn and renders the result.
func (p *runPlan) execute(ctx context.Context, env *Env) int {
	f := p.flags
	if f.nginxConf == "" {
		conf, err := proxy.NginxConf("buffered.conf")
		if err != nil {
			return harnessError(env, "run", err)
		}
		p.opts.ProxyBufferingConfig.NginxConf = conf
	}
	if f.workerMode {
		sw := &snapshotWriter{enc: json.NewEncoder(env.Stdout), worker: p.shard.Index}
		p.opts.Snapshot = sw.write
	}
	exe, err := os.Executable()
	if err != nil && p.embedded {
		return harnessError(env, "run", fmt.Errorf("find own executable to start the reference server: %w", err))
	}
	s := &runSession{p: p, env: env, exe: exe, progress: newProgressLine(env)}
	stop, err := s.startOutputs()
	defer stop()
	if err != nil {
		return usageError(env, "run", "%v", err)
	}
	s.res = &report.Result{SchemaVersion: report.SchemaVersion, HarnessVersion: Version(), Target: p.resultTarget(), Start: time.Now()}
	if p.shard.Count > 1 {
		s.res.Shard = &report.Shard{Index: p.shard.Index, Count: p.shard.Count}
	}
	s.waitStart(ctx)
	runWatch, err := selfwatch.Start(ctx, p.watch)
	if err != nil {
		return harnessError(env, "run", err)
	}
	if f.out != "" && f.outInterval > 0 {
		head := *s.res
		head.Config = p.cfg
		s.partial = startPartialOut(f.out, f.outInterval, head, func(err error) {
			fmt.Fprintf(env.Stderr, "sseharness run: rewrite partial %s: %v\n", f.out, err)
		})
		p.opts.Live = chainLive(p.opts.Live, s.partial.track)
	}
	for _, sc := range p.scs {
		if ctx.Err() != nil {
			break
		}
		if code, ok := s.runScenario(ctx, sc); !ok {
			return code
		}
	}
	if s.partial != nil {
		s.partial.close()
	}
	s.res.End = time.Now()
	s.res.Runner = []report.RunnerWatch{{Worker: p.shard.Index, Summary: runWatch.Stop()}}
	s.res.Config = p.cfg
	s.res.Evaluate()
	return s.finish(ctx)
}

// startOutputs starts what watches the run as it goes: the progress line, the live
// metrics (--metrics-addr) and the trace (--trace). stop ends the metrics server; it
// is valid with an error too.
func (s *runSession) startOutputs() (stop func(), err error) {
	f, env := s.p.flags, s.env
	stop = func() {}
	if !f.workerMode {
		s.p.opts.Progress = s.progress.update
	}
	if f.metricsAddr != "" {
		live := newLiveMetrics()
		ms, err := startMetricsServer(f.metricsAddr, live)
		if err != nil {
			return stop, err
		}
		stop = func() {
			if err := ms.stop(); err != nil {
				fmt.Fprintf(env.Stderr, "sseharness run: metrics server: %v\n", err)
			}
		}
		s.p.opts.Live = chainLive(s.p.opts.Live, live.track)
		fmt.Fprintf(env.Stderr, "sseharness run: live metrics on http://%s/metrics\n", ms.Addr)
	}
	if f.traceFile != "" {
		if s.trace, err = newTraceWriter(f.traceFile, f.traceLimit); err != nil {
			return stop, err
		}
		s.p.opts.Observe = s.trace.observe
	}
	return stop, nil
}

// waitStart waits for --start-at, if given, and records how late this process began.
func (s *runSession) waitStart(ctx context.Context) {
	at := s.p.startAt
	if at.IsZero() {
		return
	}
	st, err := shards.WaitUntil(ctx, at)
	s.res.Starts = []report.WorkerStart{{Worker: s.p.shard.Index, Start: st}}
	s.res.Start = time.Now()
	if err == nil && (!st.Waited || st.Late() >= 100*time.Millisecond) {
		fmt.Fprintf(s.env.Stderr, "sseharness run: began %v after the start time %s\n", st.Late().Round(time.Millisecond), at.UTC().Format(time.RFC3339Nano))
	}
}

// runScenario runs one scenario, against its own child reference server when the run
// is embedded, prints its line and adds it to the result; ok=false ends the run with
// code.
func (s *runSession) runScenario(ctx context.Context, sc *scenarios.Scenario) (code int, ok bool) {
	p, env := s.p, s.env
	base := p.flags.target
	var child *scenarios.ServerProcess
	if p.embedded {
		var err error
		if child, err = scenarios.StartServer(ctx, s.exe, p.serverArgs(sc)); err != nil {
			sr := report.ScenarioResult{Name: sc.Name, Verdict: report.VerdictError, Error: err.Error(), Start: time.Now(), End: time.Now()}
			fmt.Fprintf(env.Stderr, "%s: error: %v\n", sc.Name, err)
			if p.compact {
				_ = report.CompactScenario(env.Stdout, &sr)
			}
			s.add(sr)
			return 0, true
		}
		base = child.URL
	}
	s.progress.begin(sc.Name)
	watch := startScenarioWatch(ctx, p.watch)
	sr := scenarios.Run(ctx, sc, p.forTarget(base))
	watch.judge(&sr, env.Stderr)
	s.progress.end()
	if child != nil {
		if err := child.Stop(6 * time.Second); err != nil {
			fmt.Fprintf(env.Stderr, "%s: %v\n", sc.Name, err)
		}
	}
	if p.compact {
		if err := report.CompactScenario(env.Stdout, &sr); err != nil {
			return harnessError(env, "run", err), false
		}
	} else {
		fmt.Fprintf(env.Stderr, "%-22s %s (%.1fs)\n", sc.Name, sr.Verdict, sr.End.Sub(sr.Start).Seconds())
	}
	s.add(sr)
	return 0, true
}

// add puts a scenario's result into the run's, and into the partial --out.
func (s *runSession) add(sr report.ScenarioResult) {
	s.res.Scenarios = append(s.res.Scenarios, sr)
	if s.partial != nil {
		s.partial.done(sr)
	}
}

// serverArgs are the arguments of the embedded server's child for sc: the scenario's
// own, the run's --fault, then --server-arg.
func (p *runPlan) serverArgs(sc *scenarios.Scenario) []string {
	args := append([]string(nil), sc.ServerArgs...)
	if p.flags.faults != "" {
		args = append(args, "--fault", p.flags.faults)
	}
	return append(args, p.flags.serverArgs...)
}

// finish closes the trace, then writes, renders and judges the result.
func (s *runSession) finish(ctx context.Context) int {
	f := s.p.flags
	if s.trace != nil {
		written, dropped, err := s.trace.close()
		if err != nil {
			fmt.Fprintf(s.env.Stderr, "sseharness run: write %s: %v\n", f.traceFile, err)
			return ExitHarness
		}
		if dropped > 0 {
			fmt.Fprintf(s.env.Stderr, "sseharness run: --trace: %d attempts written to %s, %d more beyond --trace-limit %d not written\n", written, f.traceFile, dropped, f.traceLimit)
		}
	}
	render := s.p.render
	if f.workerMode {
		render = func(io.Writer, *report.Result) error { return nil } // stdout carries the snapshots
	}
	return finishRun(ctx, s.env, s.res, f.out, render, f.strict)
}

// exitFor maps a result to the exit code: 3 when a scenario could not run, 1 when a
// check failed, 0 otherwise.
func exitFor(res *report.Result) int {
	code := ExitOK
	for _, s := range res.Scenarios {
		switch s.Verdict {
		case report.VerdictError:
			return ExitHarness
		case report.VerdictFail:
			code = ExitFailed
		}
	}
	return code
}

func maxStreams(o scenarios.Options, scs []*scenarios.Scenario) int {
	n := o.Streams
	for _, s := range o.CapacityConfig.Steps {
		n = max(n, s)
	}
	if n == 0 {
		n = 800 // capacity's largest default step
	}
	return n
}

func orNone(s string) string { return orDefault(s, "none") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
