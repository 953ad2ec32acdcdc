package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/internal/selfwatch"
	"github.com/sseharness/sseharness/internal/shards"
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
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

func runRun(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "run", "[flags] [SCENARIO...]", `
Runs the named scenarios (default: all, see 'sseharness list') and prints one line per
scenario as it ends (verdict, duration, the figures that matter, and every failed check
with what was measured against what), then the run's verdict; -v (or --format table-full)
prints every table of checks, load, counts, durations and server figures instead. Without --target it starts the reference server itself as a
child process ('sseharness serve' on a free loopback port, with the timers each scenario
needs), and stops it afterwards. Exit 0 when no check fails, 1 when one fails (or, with
--strict, when one could not be judged), 2 on a usage error, 3 when the target is
unreachable (no TCP connection, or no response head on any stream) or a scenario could
not run. A run passes only when every scenario had at least one check judged on evidence
and none failed; a scenario with nothing judged is n/a, and the summary says why.

URL templates take {target} (the --target URL) and {session} (a session id the harness
makes up); the defaults fit the reference server's contract.`)
	var (
		target      = new(string) // the first --target: see the scale flags below
		faults      = fs.String("fault", "", "fault modes for the embedded reference server, comma-separated (see 'sseharness serve -h'); not with --target")
		streamURL   = fs.String("stream-url", defaultStreamTemplate, "URL template of a stream; {session} is optional: without it the target is a broadcast feed (one feed for every subscriber) and the session checks are n/a")
		progressURL = fs.String("progress-url", defaultProgressTemplate, "URL template of a session's progress callback (POST {\"progress\":N}); \"none\" if the target has none")
		metricsURL  = fs.String("metrics-url", "{target}/metrics", "the target's Prometheus text endpoint; \"none\" if it has none")
		ordinaryURL = fs.String("ordinary-url", "{target}/healthz", "an ordinary request to the target's origin (six-connection-limit)")
		openMetric  = fs.String("open-streams-metric", "sseref_streams_open", "the target's gauge of open streams")
		sendMetric  = fs.String("senders-metric", "sseref_senders_active", "the target's gauge of running senders")
		dupMetric   = fs.String("duplicate-senders-metric", "sseref_duplicate_senders_total", "the target's counter of second senders for one session")
		token       = fs.String("callback-token", "", "bearer token sent with progress callbacks")
		insecure    = fs.Bool("insecure", false, "skip TLS certificate verification (self-signed targets; implied for the embedded server)")
		streams     = fs.Int("streams", 0, "stream count for every scenario (0: each scenario's default)")
		holdFlag    = fs.Duration("hold", 0, "how long load-shaped scenarios hold their streams (0: each scenario's default)")
		ramp        = fs.Duration("ramp", 0, "time over which the hold scenario opens its streams (0: 1,000 per second)")
		slo         = fs.Duration("slo-p99", 0, "capacity's p99 delivery-latency objective (0: 250ms)")
		steps       = fs.String("capacity-steps", "", "capacity's stream counts, comma-separated (default 100,200,400,800)")
		out         = fs.String("out", "", "write the whole result as JSON to this file")
		format      = fs.String("format", "compact", "output format: "+strings.Join(report.Formats(), ", "))
		verbose     = fs.Bool("v", false, "print every table (--format table-full)")
		nginxConf   = fs.String("nginx-conf", "", "nginx configuration for proxy-buffering (default: the built-in docker/nginx/buffered.conf)")
		nginxBin    = fs.String("nginx", "", "nginx binary (default: looked up in PATH, /usr/sbin)")
		shard       = fs.String("shard", "", "run shard I of N (I/N, 0-based) of every scenario: its share of the streams, with session ids no other shard uses; combine with 'report merge'")
		strict      = fs.Bool("strict", false, "fail (exit 1) when any check or scenario could not be judged (n/a), for CI that wants every scenario judged")
		thrFile     = fs.String("thresholds", "", "file of absolute limits per scenario and check (YAML, or JSON when it ends in .json); --threshold flags win")
		// Outputs people plug in (issue 13).
		metricsAddr = fs.String("metrics-addr", "", "serve the run's live figures as Prometheus text on http://ADDR/metrics while it goes (loopback, e.g. 127.0.0.1:9464)")
		traceFile   = fs.String("trace", "", "write one JSON line per stream attempt to this file (session, open and close times, status, protocol, events, first and last id, close reason, error)")
		traceLimit  = fs.Int("trace-limit", defaultTraceLimit, "most lines --trace writes; later attempts are counted, not written")
		outInterval = fs.Duration("out-interval", defaultOutInterval, "how often --out is rewritten while the run goes, with the partial result marked incomplete (0: only at the end)")
		headers     headerFlag
		probes      listFlag
		thresholds  = thresholdFlag{}
		serverArgs  listFlag
	)
	fs.Var(&serverArgs, "server-arg", "a flag for the embedded reference server, after each scenario's own, e.g. --server-arg=--h2-max-streams=100 (repeatable; see 'sseharness serve -h'); not with --target")
	// Scale: workers, source addresses, start time, several targets, self-watch (issue 14).
	var (
		targets        = &targetsFlag{first: target}
		runnerMaxCPU   = fs.Float64("runner-max-cpu", selfwatch.DefaultMaxCPU, "runner-healthy fails when the runner used more than this share of its cores")
		runnerMaxDelay = fs.Duration("runner-max-delay", selfwatch.DefaultMaxDelay, "runner-healthy fails when the runner's own scheduling delay p99 exceeds this")
		workers        = fs.Int("workers", 0, "run as N worker processes of this executable, each a shard of every scenario, merged into one result (0: as many as the streams need under the open-file limit, at least 1; more than 1 needs --target)")
		workerMode     = fs.Bool("worker", false, "internal: run as one worker of --workers (live counts as JSON lines on stdout, the result only to --out)")
		startAtFlag    = fs.String("start-at", "", "RFC 3339 time (e.g. 2026-12-01T10:00:00Z) at which to open the streams: each process (shard, worker) waits for it, so that shards started apart still load together; the result says how late each began (default with --workers: 1s after the workers are started)")
		sourceAddrs    = fs.String("source-addrs", "", "local source addresses for the streams' connections, round-robin: a list or range, e.g. 127.0.0.2-127.0.0.40 (default: the system's; on a loopback target the harness picks enough loopback addresses itself when the streams need more ports than one address has)")
	)
	fs.Var(targets, "target", "base URL of the SSE service under test (default: start the embedded reference server); repeat it to spread the sessions over several servers (e.g. 'serve --procs N'), each session pinned to one by its id")
	fs.Var(&headers, "header", "extra request header for the streams, \"Name: value\" (repeatable)")
	fs.Var(&probes, "probe", "extra metric to read from --metrics-url and keep in the results (repeatable)")
	fs.Var(thresholds, "threshold", "override a check's threshold, CHECK=VALUE or SCENARIO/CHECK=VALUE (repeatable; see 'sseharness list -v')")
	tflags := addTargetFlags(fs)
	// Request streams (request-stream, request-capacity) and the request description.
	reqFlags := addRequestFlags(fs)
	names, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if err := tflags.applyFile(fs); err != nil {
		return usageError(env, "run", "%v", err)
	}
	if *verbose {
		*format = "table-full"
	}
	render, err := report.RendererFor(*format)
	if err != nil {
		return usageError(env, "run", "%v", err)
	}
	// The compact rendering prints each scenario as it ends and the run's verdict last.
	compact := *format == "compact"
	if compact {
		render = report.CompactVerdict
	}
	scs, err := scenarios.Select(names)
	if err != nil {
		return usageError(env, "run", "%v", err)
	}
	var sh runner.Shard
	if *shard != "" {
		i, n, ok := strings.Cut(*shard, "/")
		var err1, err2 error
		sh.Index, err1 = strconv.Atoi(i)
		sh.Count, err2 = strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
			return usageError(env, "run", "--shard %q: want I/N with 0 <= I < N, e.g. 0/4", *shard)
		}
	}
	several := targets.several()
	metricsSet := false
	fs.Visit(func(f *flag.Flag) { metricsSet = metricsSet || f.Name == "metrics-url" })
	if several != nil {
		var probs []string
		for _, t := range several[1:] {
			if err := validateTarget("--target", t); err != nil {
				probs = append(probs, err.Error())
			}
		}
		if len(probs) > 0 {
			return usageError(env, "run", "%s", strings.Join(probs, "; "))
		}
		if metricsSet && *metricsURL != "none" {
			fmt.Fprintf(env.Stderr, "sseharness run: %d targets: the server figures are of %s alone, and its per-stream figures divide that one server's growth by every target's streams\n", len(several), *metricsURL)
		}
		if !metricsSet {
			// One server's metrics are not the whole service's: a gauge of open streams
			// would count a share of them. Read one only when asked.
			*metricsURL = "none"
			fmt.Fprintf(env.Stderr, "sseharness run: %d targets, each session pinned to one by its id; server metrics not read (--metrics-url URL reads one server's)\n", len(several))
		}
	}
	var startAt time.Time
	if *startAtFlag != "" {
		if startAt, err = shards.ParseStartAt(*startAtFlag, time.Now()); err != nil {
			return usageError(env, "run", "--start-at: %v", err)
		}
	}
	watchCfg := selfwatch.Config{MaxCPU: *runnerMaxCPU, MaxDelay: *runnerMaxDelay}
	if err := watchCfg.Validate(); err != nil {
		return usageError(env, "run", "--runner-max-cpu/--runner-max-delay: %v", err)
	}
	if *thrFile != "" {
		t, err := report.LoadThresholds(*thrFile)
		if err != nil {
			return usageError(env, "run", "%v", err)
		}
		for k, v := range t.Flat() {
			if _, set := thresholds[k]; !set {
				thresholds[k] = v
			}
		}
	}
	reqOpts, reqCfg, err := reqFlags.options(fs, thresholds, scs)
	if err != nil {
		return usageError(env, "run", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	embedded := *target == ""
	if !embedded && *faults != "" {
		return usageError(env, "run", "--fault applies to the embedded reference server only; start 'sseharness serve --fault ...' yourself and point --target at it")
	}
	if !embedded && len(serverArgs) > 0 {
		return usageError(env, "run", "--server-arg applies to the embedded reference server only; pass the flags to your own server")
	}
	for _, a := range serverArgs {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-") || name == "":
			return usageError(env, "run", "--server-arg %q: want one serve flag such as --h2-max-streams=100", a)
		case name == "addr" || name == "procs" || name == "fault":
			return usageError(env, "run", "--server-arg %q: the run chooses the embedded server's --addr and --procs; faults go in run's --fault", a)
		}
	}
	var capSteps []int
	if *steps != "" {
		for _, f := range strings.Split(*steps, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return usageError(env, "run", "--capacity-steps %q: want comma-separated stream counts", *steps)
			}
			capSteps = append(capSteps, n)
		}
	}
	none := func(s string) string {
		if s == "none" {
			return ""
		}
		return s
	}
	opts := scenarios.Options{
		Embedded:               embedded,
		StreamTemplate:         *streamURL,
		ProgressTemplate:       none(*progressURL),
		OpenStreamsMetric:      *openMetric,
		SendersMetric:          *sendMetric,
		DuplicateSendersMetric: *dupMetric,
		ProbeNames:             probes,
		Header:                 http.Header(headers),
		CallbackToken:          *token,
		Insecure:               *insecure || embedded,
		Streams:                *streams,
		Hold:                   *holdFlag,
		HoldConfig:             scenarios.HoldConfig{Ramp: *ramp},
		CapacityConfig:         scenarios.CapacityConfig{SLOP99: *slo, Steps: capSteps},
		Thresholds:             thresholds,
		Shard:                  sh,
		ProxyBufferingConfig:   scenarios.ProxyBufferingConfig{NginxPath: *nginxBin},
		Requests:               reqOpts,
	}
	if *nginxConf != "" {
		opts.ProxyBufferingConfig.NginxConf, err = os.ReadFile(*nginxConf)
		if err != nil {
			return usageError(env, "run", "--nginx-conf: %v", err)
		}
	} else if opts.ProxyBufferingConfig.NginxConf, err = proxy.NginxConf("buffered.conf"); err != nil {
		return harnessError(env, "run", err)
	}
	if *outInterval < 0 {
		return usageError(env, "run", "--out-interval %v: want 0 (off) or a positive duration", *outInterval)
	}
	if *traceLimit < 1 {
		return usageError(env, "run", "--trace-limit %d: want at least 1", *traceLimit)
	}
	if err := (runPreflight{Target: *target, Outputs: []outputFile{{"--out", *out}, {"--trace", *traceFile}}}).check(); err != nil {
		return usageError(env, "run", "%v", err)
	}
	check := opts
	check.Target = *target
	if embedded {
		check.Target = "http://127.0.0.1:0" // the child's URL is known only once it runs
	}
	check.TargetDescription = tflags.description(check.Target)
	if err := reqFlags.describeStreams(scs, &check.TargetDescription); err != nil {
		return usageError(env, "run", "%v", err)
	}
	if err := check.Validate(scs); err != nil {
		return usageError(env, "run", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	srcs, srcNote, err := resolveSourceAddrs(*sourceAddrs, check.Target, maxStreams(opts, scs))
	if err != nil {
		return usageError(env, "run", "%v", err)
	}
	opts.SourceAddrs = srcs
	if srcNote != "" {
		fmt.Fprintf(env.Stderr, "sseharness run: %s\n", srcNote)
	}
	if embedded && *faults != "" {
		// Let serve judge the fault list before any scenario starts.
		if err := validateFaults(*faults); err != nil {
			return usageError(env, "run", "--fault: %v", err)
		}
	}
	if env.Getenv("GOGC") == "" {
		// The runner's heap is long-lived per-stream state with a low allocation rate
		// (about one small allocation per event), so a tight collection target costs
		// little CPU and saves the default 100% headroom on every stream's memory.
		debug.SetGCPercent(runGCPercent)
	}
	lim, limErr := runner.RaiseFDLimit()
	nWorkers, err := resolveWorkers(*workers, *workerMode, *out, sh, embedded, maxStreams(opts, scs), lim, limErr)
	if err != nil {
		return usageError(env, "run", "%v", err)
	}
	if nWorkers > 1 {
		return runWorkers(ctx, env, workerRun{args: args, n: nWorkers, out: *out, render: render, strict: *strict, startAt: *startAtFlag != ""})
	}
	if limErr == nil {
		if err := lim.CheckStreams(shardStreams(maxStreams(opts, scs), sh)); err != nil {
			return usageError(env, "run", "%v", err)
		}
	}
	if *workerMode {
		sw := &snapshotWriter{enc: json.NewEncoder(env.Stdout), worker: sh.Index}
		opts.Snapshot = sw.write
	}
	exe, err := os.Executable()
	if err != nil && embedded {
		return harnessError(env, "run", fmt.Errorf("find own executable to start the reference server: %w", err))
	}

	progress := newProgressLine(env)
	if !*workerMode {
		opts.Progress = progress.update
	}
	if *metricsAddr != "" {
		live := newLiveMetrics()
		ms, err := startMetricsServer(*metricsAddr, live)
		if err != nil {
			return usageError(env, "run", "%v", err)
		}
		defer func() {
			if err := ms.stop(); err != nil {
				fmt.Fprintf(env.Stderr, "sseharness run: metrics server: %v\n", err)
			}
		}()
		opts.Live = chainLive(opts.Live, live.track)
		fmt.Fprintf(env.Stderr, "sseharness run: live metrics on http://%s/metrics\n", ms.Addr)
	}
	var trace *traceWriter
	if *traceFile != "" {
		if trace, err = newTraceWriter(*traceFile, *traceLimit); err != nil {
			return usageError(env, "run", "%v", err)
		}
		opts.Observe = trace.observe
	}
	res := &report.Result{
		SchemaVersion:  report.SchemaVersion,
		HarnessVersion: Version(),
		Target:         *target,
		Start:          time.Now(),
	}
	if sh.Count > 1 {
		res.Shard = &report.Shard{Index: sh.Index, Count: sh.Count}
	}
	if several != nil {
		res.Target = strings.Join(several, " ")
	}
	if embedded {
		res.Target = "embedded reference server"
		if *faults != "" {
			res.Target += " --fault " + *faults
		}
	}
	cfg := runConfig{
		Target: res.Target, Embedded: embedded, Faults: *faults, StreamTemplate: opts.StreamTemplate,
		ProgressTemplate: orNone(opts.ProgressTemplate), OrdinaryURL: *ordinaryURL,
		Streams: opts.Streams, CapacitySteps: capSteps, Thresholds: thresholds, Insecure: opts.Insecure,
		NginxConf: orDefault(*nginxConf, "built-in docker/nginx/buffered.conf"), Strict: *strict,
		ServerArgs:        serverArgs,
		TargetDescription: tflags.config(*streamURL),
		Requests:          &reqCfg,
	}
	cfg.TargetDescription.Method, cfg.TargetDescription.Body = check.TargetDescription.Method, check.TargetDescription.Body
	if srcs != nil {
		cfg.SourceAddrs = sourceAddrsText(srcs)
	}
	for _, d := range []struct {
		v   time.Duration
		dst *string
	}{{*holdFlag, &cfg.Hold}, {*ramp, &cfg.Ramp}, {*slo, &cfg.SLOP99}} {
		if d.v > 0 {
			*d.dst = d.v.String()
		}
	}
	for _, sc := range scs {
		cfg.Scenarios = append(cfg.Scenarios, sc.Name)
	}

	if !startAt.IsZero() {
		st, err := shards.WaitUntil(ctx, startAt)
		res.Starts = []report.WorkerStart{{Worker: sh.Index, Start: st}}
		res.Start = time.Now()
		if err == nil && (!st.Waited || st.Late() >= 100*time.Millisecond) {
			fmt.Fprintf(env.Stderr, "sseharness run: began %v after the start time %s\n", st.Late().Round(time.Millisecond), startAt.UTC().Format(time.RFC3339Nano))
		}
	}
	runWatch, err := selfwatch.Start(ctx, watchCfg)
	if err != nil {
		return harnessError(env, "run", err)
	}
	var partial *partialOut
	if *out != "" && *outInterval > 0 {
		head := *res
		head.Config = cfg
		partial = startPartialOut(*out, *outInterval, head, func(err error) {
			fmt.Fprintf(env.Stderr, "sseharness run: rewrite partial %s: %v\n", *out, err)
		})
		opts.Live = chainLive(opts.Live, partial.track)
	}
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		o := opts
		var child *scenarios.ServerProcess
		base := *target
		if embedded {
			sargs := append([]string(nil), sc.ServerArgs...)
			if *faults != "" {
				sargs = append(sargs, "--fault", *faults)
			}
			sargs = append(sargs, serverArgs...)
			child, err = scenarios.StartServer(ctx, exe, sargs)
			if err != nil {
				res.Scenarios = append(res.Scenarios, report.ScenarioResult{Name: sc.Name, Verdict: report.VerdictError, Error: err.Error(), Start: time.Now(), End: time.Now()})
				fmt.Fprintf(env.Stderr, "%s: error: %v\n", sc.Name, err)
				if compact {
					_ = report.CompactScenario(env.Stdout, &res.Scenarios[len(res.Scenarios)-1])
				}
				if partial != nil {
					partial.done(res.Scenarios[len(res.Scenarios)-1])
				}
				continue
			}
			base = child.URL
		}
		o.Target = base
		o.TargetDescription = tflags.description(base)
		o.TargetDescription.Method, o.TargetDescription.Body = check.TargetDescription.Method, check.TargetDescription.Body
		o.Targets = several
		o.SixConnectionConfig.OrdinaryURL = strings.ReplaceAll(*ordinaryURL, "{target}", strings.TrimRight(base, "/"))
		o.MetricsURL = strings.ReplaceAll(none(*metricsURL), "{target}", strings.TrimRight(base, "/"))
		cfg.MetricsURL = orNone(strings.ReplaceAll(none(*metricsURL), "{target}", "TARGET"))
		progress.begin(sc.Name)
		watch := startScenarioWatch(ctx, watchCfg)
		sr := scenarios.Run(ctx, sc, o)
		watch.judge(&sr, env.Stderr)
		progress.end()
		if child != nil {
			if err := child.Stop(6 * time.Second); err != nil {
				fmt.Fprintf(env.Stderr, "%s: %v\n", sc.Name, err)
			}
		}
		if compact {
			if err := report.CompactScenario(env.Stdout, &sr); err != nil {
				return harnessError(env, "run", err)
			}
		} else {
			fmt.Fprintf(env.Stderr, "%-22s %s (%.1fs)\n", sc.Name, sr.Verdict, sr.End.Sub(sr.Start).Seconds())
		}
		res.Scenarios = append(res.Scenarios, sr)
		if partial != nil {
			partial.done(sr)
		}
	}
	if partial != nil {
		partial.close()
	}
	res.End = time.Now()
	res.Runner = []report.RunnerWatch{{Worker: sh.Index, Summary: runWatch.Stop()}}
	res.Config = cfg
	res.Evaluate()

	if trace != nil {
		written, dropped, err := trace.close()
		if err != nil {
			fmt.Fprintf(env.Stderr, "sseharness run: write %s: %v\n", *traceFile, err)
			return ExitHarness
		}
		if dropped > 0 {
			fmt.Fprintf(env.Stderr, "sseharness run: --trace: %d attempts written to %s, %d more beyond --trace-limit %d not written\n", written, *traceFile, dropped, *traceLimit)
		}
	}
	if *out != "" {
		if err := report.Save(*out, res); err != nil {
			fmt.Fprintf(env.Stderr, "sseharness run: write %s: %v\n", *out, err)
			return ExitHarness
		}
	}
	if *workerMode {
		render = func(io.Writer, *report.Result) error { return nil } // stdout carries the snapshots
	}
	if err := render(env.Stdout, res); err != nil {
		return harnessError(env, "run", err)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(env.Stderr, "sseharness run: interrupted; the results above cover what ran")
	}
	for _, s := range res.Scenarios {
		if strings.HasPrefix(s.Error, "target unreachable") {
			fmt.Fprintf(env.Stderr, "sseharness run: %s: %s\n", s.Name, s.Error)
		}
	}
	if un := res.Unjudged(); len(un) > 0 {
		fmt.Fprintf(env.Stderr, "sseharness run: %d of %d scenarios could not be judged: %s\n", len(un), len(res.Scenarios), strings.Join(un, " | "))
	}
	code = exitFor(res)
	if *strict && code == ExitOK {
		if n := res.NotApplicable(); n > 0 {
			fmt.Fprintf(env.Stderr, "sseharness run: --strict: %d checks could not be judged (n/a)\n", n)
			code = ExitFailed
		}
	}
	return code
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

// headerFlag collects "Name: value" headers.
type headerFlag http.Header

func (h *headerFlag) String() string { return "" }
func (h *headerFlag) Set(v string) error {
	name, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return errors.New(`want "Name: value"`)
	}
	if *h == nil {
		*h = headerFlag{}
	}
	http.Header(*h).Add(strings.TrimSpace(name), strings.TrimSpace(val))
	return nil
}

// listFlag collects repeated values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// thresholdFlag collects KEY=VALUE overrides.
type thresholdFlag map[string]string

func (t thresholdFlag) String() string { return "" }
func (t thresholdFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" || val == "" {
		return errors.New("want CHECK=VALUE or SCENARIO/CHECK=VALUE")
	}
	t[k] = val
	return nil
}

var _ flag.Value = thresholdFlag{}
