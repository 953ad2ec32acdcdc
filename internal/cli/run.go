package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/docker"
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
		target      = fs.String("target", "", "base URL of the SSE service under test (default: start the embedded reference server)")
		faults      = fs.String("fault", "", "fault modes for the embedded reference server, comma-separated (see 'sseharness serve -h'); not with --target")
		streamURL   = fs.String("stream-url", defaultStreamTemplate, "URL template of a session's event stream")
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
	)
	fs.Var(&headers, "header", "extra request header for the streams, \"Name: value\" (repeatable)")
	fs.Var(&probes, "probe", "extra metric to read from --metrics-url and keep in the results (repeatable)")
	fs.Var(thresholds, "threshold", "override a check's threshold, CHECK=VALUE or SCENARIO/CHECK=VALUE (repeatable; see 'sseharness list -v')")
	names, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
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
	embedded := *target == ""
	if !embedded && *faults != "" {
		return usageError(env, "run", "--fault applies to the embedded reference server only; start 'sseharness serve --fault ...' yourself and point --target at it")
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
	}
	if *nginxConf != "" {
		opts.ProxyBufferingConfig.NginxConf, err = os.ReadFile(*nginxConf)
		if err != nil {
			return usageError(env, "run", "--nginx-conf: %v", err)
		}
	} else if opts.ProxyBufferingConfig.NginxConf, err = docker.NginxConf("buffered.conf"); err != nil {
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
	if err := check.Validate(scs); err != nil {
		return usageError(env, "run", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
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
	if lim, err := runner.RaiseFDLimit(); err == nil {
		if err := lim.CheckStreams(maxStreams(opts, scs)); err != nil {
			return usageError(env, "run", "%v", err)
		}
	}
	exe, err := os.Executable()
	if err != nil && embedded {
		return harnessError(env, "run", fmt.Errorf("find own executable to start the reference server: %w", err))
	}

	progress := newProgressLine(env)
	opts.Progress = progress.update
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
		o.OrdinaryURL = strings.ReplaceAll(*ordinaryURL, "{target}", strings.TrimRight(base, "/"))
		o.MetricsURL = strings.ReplaceAll(none(*metricsURL), "{target}", strings.TrimRight(base, "/"))
		cfg.MetricsURL = orNone(strings.ReplaceAll(none(*metricsURL), "{target}", "TARGET"))
		progress.begin(sc.Name)
		sr := scenarios.Run(ctx, sc, o)
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
