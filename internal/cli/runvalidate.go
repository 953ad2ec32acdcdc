package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sseharness/sseharness/internal/selfwatch"
	"github.com/sseharness/sseharness/internal/shards"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
	"github.com/sseharness/sseharness/scenarios"
)

// runPlan is what run executes: run's flags resolved and checked together.
type runPlan struct {
	flags    *runFlags
	scs      []*scenarios.Scenario
	render   report.Renderer
	compact  bool // print each scenario as it ends, the verdict last
	embedded bool // no --target: a child reference server per scenario
	several  []string
	shard    runner.Shard
	startAt  time.Time
	watch    selfwatch.Config
	// opts are the scenarios' options but for the target, which each scenario's
	// forTarget fills in; streams is the most streams a scenario opens.
	opts    scenarios.Options
	streams int
	// desc is the target description with the event streams' method and body.
	desc    scenarios.TargetDescription
	cfg     runConfig
	workers int
	// notes are said on stderr once the plan is accepted, before the run.
	notes []string
}

// problems collects every problem of a command line, each once, in the order found.
type problems struct {
	list []string
	seen map[string]bool
}

// add records err, one problem per line of its message; nil is nothing.
func (p *problems) add(err error) {
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line == "" || p.seen[line] {
			continue
		}
		if p.seen == nil {
			p.seen = map[string]bool{}
		}
		p.seen[line] = true
		p.list = append(p.list, line)
	}
}

func (p *problems) addf(format string, args ...any) { p.add(fmt.Errorf(format, args...)) }

// err is every problem as one error, one problem per line; nil when there is none.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return errors.New(strings.Join(p.list, "\n"))
}

// Validate checks the whole command line and reports every problem at once (one per
// line of the error); with none it returns what the run executes. It reads the files
// the flags name (thresholds, nginx configuration, request bodies) and raises the
// open-file limit, but starts, binds and dials nothing.
func (f *runFlags) Validate() (*runPlan, error) {
	var probs problems
	p := &runPlan{flags: f, shard: runner.Shard(f.shard), embedded: f.target == "", several: f.targets.several()}
	p.render, p.compact = f.renderer(&probs)
	scs, err := scenarios.Select(f.names)
	probs.add(err)
	p.scs = scs
	f.checkTargets(p, &probs)
	if f.startAt != "" {
		p.startAt, err = shards.ParseStartAt(f.startAt, time.Now())
		if err != nil {
			probs.addf("--start-at: %v", err)
		}
	}
	p.watch = selfwatch.Config{MaxCPU: f.runnerMaxCPU, MaxDelay: f.runnerMaxDelay}
	if err := p.watch.Validate(); err != nil {
		probs.addf("--runner-max-cpu/--runner-max-delay: %v", err)
	}
	probs.add(f.loadThresholds())
	reqOpts, reqCfg, err := f.requests.options(f.fs, f.thresholds, scs)
	probs.add(err)
	f.checkServerArgs(p, &probs)
	p.opts = f.scenarioOptions(p.embedded, p.shard, reqOpts)
	if f.nginxConf != "" {
		if p.opts.ProxyBufferingConfig.NginxConf, err = os.ReadFile(f.nginxConf); err != nil {
			probs.addf("--nginx-conf: %v", err)
		}
	}
	f.checkOutputs(&probs)
	check := p.opts
	check.Target = f.target
	if p.embedded || validateTarget("--target", f.target) != nil {
		// The child's URL is known only once it runs; a bad --target is reported by
		// checkOutputs, once.
		check.Target = "http://127.0.0.1:0"
	}
	check.TargetDescription = f.targetDesc.description(check.Target)
	probs.add(f.requests.describeStreams(scs, &check.TargetDescription))
	probs.add(check.Validate(scs))
	p.desc = check.TargetDescription
	p.streams = maxStreams(p.opts, scs)
	srcs, srcNote, err := resolveSourceAddrs(f.sourceAddrs, check.Target, p.streams)
	probs.add(err)
	p.opts.SourceAddrs = srcs
	if srcNote != "" {
		p.notes = append(p.notes, srcNote)
	}
	if p.embedded && f.faults != "" {
		// Let serve judge the fault list before any scenario starts.
		if err := validateFaults(f.faults); err != nil {
			probs.addf("--fault: %v", err)
		}
	}
	f.checkWorkers(p, &probs)
	if err := probs.err(); err != nil {
		return nil, err
	}
	p.cfg = f.resultConfig(p, reqCfg)
	return p, nil
}

// renderer is the renderer --format (or -v) asks for, and whether it is the compact
// one, which prints each scenario as it ends and the run's verdict last.
func (f *runFlags) renderer(probs *problems) (report.Renderer, bool) {
	format := f.format
	if f.verbose {
		format = "table-full"
	}
	render, err := report.RendererFor(format)
	if err != nil {
		probs.add(err)
		return nil, false
	}
	if format == "compact" {
		return report.CompactVerdict, true
	}
	return render, false
}

// checkTargets checks the second and later --target, and with several of them decides
// which server's metrics are read.
func (f *runFlags) checkTargets(p *runPlan, probs *problems) {
	if p.several == nil {
		return
	}
	for _, t := range p.several[1:] {
		probs.add(validateTarget("--target", t))
	}
	switch {
	case f.set["metrics-url"] && f.metricsURL != "none":
		p.notes = append(p.notes, fmt.Sprintf("%d targets: the server figures are of %s alone, and its per-stream figures divide that one server's growth by every target's streams", len(p.several), f.metricsURL))
	case !f.set["metrics-url"]:
		// One server's metrics are not the whole service's: a gauge of open streams
		// would count a share of them. Read one only when asked.
		f.metricsURL = "none"
		p.notes = append(p.notes, fmt.Sprintf("%d targets, each session pinned to one by its id; server metrics not read (--metrics-url URL reads one server's)", len(p.several)))
	}
}

// loadThresholds adds the --thresholds file's limits to those --threshold did not set.
func (f *runFlags) loadThresholds() error {
	if f.thrFile == "" {
		return nil
	}
	t, err := report.LoadThresholds(f.thrFile)
	if err != nil {
		return err
	}
	for k, v := range t.Flat() {
		if _, set := f.thresholds[k]; !set {
			f.thresholds[k] = v
		}
	}
	return nil
}

// checkServerArgs checks --fault and --server-arg: for the embedded server only, one
// serve flag each, not one the run chooses, and each a flag serve knows with a value it
// takes (parsed by serve's own flags after each scenario's, as the child gets them).
func (f *runFlags) checkServerArgs(p *runPlan, probs *problems) {
	if !p.embedded && f.faults != "" {
		probs.addf("--fault applies to the embedded reference server only; start 'sseharness serve --fault ...' yourself and point --target at it")
	}
	if !p.embedded && len(f.serverArgs) > 0 {
		probs.addf("--server-arg applies to the embedded reference server only; pass the flags to your own server")
		return
	}
	shapeOK := true
	for _, a := range f.serverArgs {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-") || name == "":
			probs.addf("--server-arg %q: want one serve flag such as --h2-max-streams=100", a)
			shapeOK = false
		case name == "addr" || name == "procs" || name == "fault":
			probs.addf("--server-arg %q: the run chooses the embedded server's --addr and --procs; faults go in run's --fault", a)
			shapeOK = false
		}
	}
	if shapeOK && len(f.serverArgs) > 0 {
		probs.add(checkServeArgs(p.scs, f.serverArgs))
	}
}

// checkOutputs checks the output flags: their values, the target URL and that every
// output file can be written.
func (f *runFlags) checkOutputs(probs *problems) {
	if f.outInterval < 0 {
		probs.addf("--out-interval %v: want 0 (off) or a positive duration", f.outInterval)
	}
	if f.traceLimit < 1 {
		probs.addf("--trace-limit %d: want at least 1", f.traceLimit)
	}
	if f.metricsAddr != "" {
		probs.add(checkMetricsAddr(f.metricsAddr))
	}
	probs.add(runPreflight{Target: f.target, Outputs: []outputFile{{"--out", f.out}, {"--trace", f.traceFile}}}.check())
}

// checkWorkers decides the number of worker processes and checks that the streams fit
// under the open-file limit (raised first).
func (f *runFlags) checkWorkers(p *runPlan, probs *problems) {
	lim, limErr := runner.RaiseFDLimit()
	n, err := resolveWorkers(f.workers, f.workerMode, f.out, p.shard, p.embedded, p.streams, lim, limErr)
	if err != nil {
		probs.add(err)
		return
	}
	p.workers = n
	if n <= 1 && limErr == nil {
		probs.add(lim.CheckStreams(shardStreams(p.streams, p.shard)))
	}
}

// scenarioOptions are the scenarios' options the flags give, but for the target and
// the source addresses.
func (f *runFlags) scenarioOptions(embedded bool, sh runner.Shard, reqOpts scenarios.RequestOptions) scenarios.Options {
	return scenarios.Options{
		Embedded:               embedded,
		StreamTemplate:         f.streamURL,
		ProgressTemplate:       noneEmpty(f.progressURL),
		OpenStreamsMetric:      f.openMetric,
		SendersMetric:          f.sendMetric,
		DuplicateSendersMetric: f.dupMetric,
		ProbeNames:             f.probes,
		Header:                 http.Header(f.headers),
		CallbackToken:          f.token,
		Insecure:               f.insecure || embedded,
		Streams:                f.streams,
		Hold:                   f.hold,
		HoldConfig:             scenarios.HoldConfig{Ramp: f.ramp},
		CapacityConfig:         scenarios.CapacityConfig{SLOP99: f.slo, Steps: f.steps},
		Thresholds:             f.thresholds,
		Shard:                  sh,
		ProxyBufferingConfig:   scenarios.ProxyBufferingConfig{NginxPath: f.nginxBin},
		Requests:               reqOpts,
	}
}

// resultConfig is the run's configuration as the result file records it.
func (f *runFlags) resultConfig(p *runPlan, reqCfg requestRunConfig) runConfig {
	cfg := runConfig{
		Target: p.resultTarget(), Embedded: p.embedded, Faults: f.faults, StreamTemplate: p.opts.StreamTemplate,
		ProgressTemplate: orNone(p.opts.ProgressTemplate), OrdinaryURL: f.ordinaryURL,
		MetricsURL: orNone(strings.ReplaceAll(noneEmpty(f.metricsURL), "{target}", "TARGET")),
		Streams:    p.opts.Streams, CapacitySteps: f.steps, Thresholds: f.thresholds, Insecure: p.opts.Insecure,
		NginxConf: orDefault(f.nginxConf, "built-in docker/nginx/buffered.conf"), Strict: f.strict,
		ServerArgs:        f.serverArgs,
		TargetDescription: f.targetDesc.config(f.streamURL),
		Requests:          &reqCfg,
	}
	cfg.TargetDescription.Method, cfg.TargetDescription.Body = p.desc.Method, p.desc.Body
	if p.opts.SourceAddrs != nil {
		cfg.SourceAddrs = sourceAddrsText(p.opts.SourceAddrs)
	}
	for _, d := range []struct {
		v   time.Duration
		dst *string
	}{{f.hold, &cfg.Hold}, {f.ramp, &cfg.Ramp}, {f.slo, &cfg.SLOP99}} {
		if d.v > 0 {
			*d.dst = d.v.String()
		}
	}
	for _, sc := range p.scs {
		cfg.Scenarios = append(cfg.Scenarios, sc.Name)
	}
	return cfg
}

// resultTarget is the target as the result names it.
func (p *runPlan) resultTarget() string {
	f := p.flags
	switch {
	case p.embedded && f.faults != "":
		return "embedded reference server --fault " + f.faults
	case p.embedded:
		return "embedded reference server"
	case p.several != nil:
		return strings.Join(p.several, " ")
	}
	return f.target
}

// forTarget is the scenario options for one target base URL (the embedded server's
// when it is a child process).
func (p *runPlan) forTarget(base string) scenarios.Options {
	f := p.flags
	o := p.opts
	o.Target = base
	o.TargetDescription = f.targetDesc.description(base)
	o.TargetDescription.Method, o.TargetDescription.Body = p.desc.Method, p.desc.Body
	o.Targets = p.several
	o.SixConnectionConfig.OrdinaryURL = strings.ReplaceAll(f.ordinaryURL, "{target}", strings.TrimRight(base, "/"))
	o.MetricsURL = strings.ReplaceAll(noneEmpty(f.metricsURL), "{target}", strings.TrimRight(base, "/"))
	return o
}

// noneEmpty is s, or "" for "none".
func noneEmpty(s string) string {
	if s == "none" {
		return ""
	}
	return s
}
