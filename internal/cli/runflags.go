package cli

import (
	"errors"
	"flag"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/internal/selfwatch"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

const runDescription = `
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
makes up); the defaults fit the reference server's contract.`

// runFlags is run's command line as given: one field per flag (after --target-file
// filled in what the command line did not set), the scenario names, and the arguments
// themselves (passed on to --workers). Validate turns it into a runPlan.
type runFlags struct {
	args  []string // as given
	names []string // the scenarios asked for
	set   map[string]bool

	target                             string // the first --target: see targets
	targets                            targetsFlag
	faults                             string
	streamURL, progressURL, metricsURL string
	ordinaryURL                        string
	openMetric, sendMetric, dupMetric  string
	token                              string
	insecure                           bool
	streams                            int
	hold, ramp, slo                    time.Duration
	steps                              stepsFlag
	out, format                        string
	verbose                            bool
	nginxConf, nginxBin                string
	shard                              shardFlag
	strict                             bool
	thrFile                            string
	metricsAddr, traceFile             string
	traceLimit                         int
	outInterval                        time.Duration
	headers                            headerFlag
	probes                             listFlag
	thresholds                         thresholdFlag
	serverArgs                         listFlag
	runnerMaxCPU                       float64
	runnerMaxDelay                     time.Duration
	workers                            int
	workerMode                         bool
	startAt, sourceAddrs               string
	targetDesc                         *targetFlags
	requests                           *requestFlags
	fs                                 *flag.FlagSet
}

// bindRunFlags defines every flag of run on fs, writing into one runFlags.
func bindRunFlags(fs *flag.FlagSet) *runFlags {
	f := &runFlags{fs: fs, thresholds: thresholdFlag{}}
	f.targets.first = &f.target
	fs.StringVar(&f.faults, "fault", "", "fault modes for the embedded reference server, comma-separated (see 'sseharness serve -h'); not with --target")
	fs.StringVar(&f.streamURL, "stream-url", defaultStreamTemplate, "URL template of a stream; {session} is optional: without it the target is a broadcast feed (one feed for every subscriber) and the session checks are n/a")
	fs.StringVar(&f.progressURL, "progress-url", defaultProgressTemplate, "URL template of a session's progress callback (POST {\"progress\":N}); \"none\" if the target has none")
	fs.StringVar(&f.metricsURL, "metrics-url", "{target}/metrics", "the target's Prometheus text endpoint; \"none\" if it has none")
	fs.StringVar(&f.ordinaryURL, "ordinary-url", "{target}/healthz", "an ordinary request to the target's origin (six-connection-limit)")
	fs.StringVar(&f.openMetric, "open-streams-metric", "sseref_streams_open", "the target's gauge of open streams")
	fs.StringVar(&f.sendMetric, "senders-metric", "sseref_senders_active", "the target's gauge of running senders")
	fs.StringVar(&f.dupMetric, "duplicate-senders-metric", "sseref_duplicate_senders_total", "the target's counter of second senders for one session")
	fs.StringVar(&f.token, "callback-token", "", "bearer token sent with progress callbacks")
	fs.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification (self-signed targets; implied for the embedded server)")
	fs.IntVar(&f.streams, "streams", 0, "stream count for every scenario (0: each scenario's default)")
	fs.DurationVar(&f.hold, "hold", 0, "how long load-shaped scenarios hold their streams (0: each scenario's default)")
	fs.DurationVar(&f.ramp, "ramp", 0, "time over which the hold scenario opens its streams (0: 1,000 per second)")
	fs.DurationVar(&f.slo, "slo-p99", 0, "capacity's p99 delivery-latency objective (0: 250ms)")
	fs.Var(&f.steps, "capacity-steps", "capacity's stream `counts`, comma-separated (default 100,200,400,800)")
	fs.StringVar(&f.out, "out", "", "write the whole result as JSON to this file")
	fs.StringVar(&f.format, "format", "compact", "output format: "+strings.Join(report.Formats(), ", "))
	fs.BoolVar(&f.verbose, "v", false, "print every table (--format table-full)")
	fs.StringVar(&f.nginxConf, "nginx-conf", "", "nginx configuration for proxy-buffering (default: the built-in docker/nginx/buffered.conf)")
	fs.StringVar(&f.nginxBin, "nginx", "", "nginx binary (default: looked up in PATH, /usr/sbin)")
	fs.Var(&f.shard, "shard", "run shard `I/N` (shard I of N, 0-based) of every scenario: its share of the streams, with session ids no other shard uses; combine with 'report merge'")
	fs.BoolVar(&f.strict, "strict", false, "fail (exit 1) when any check or scenario could not be judged (n/a), for CI that wants every scenario judged")
	fs.StringVar(&f.thrFile, "thresholds", "", "file of absolute limits per scenario and check (YAML, or JSON when it ends in .json); --threshold flags win")
	// Outputs people plug in (issue 13).
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve the run's live figures as Prometheus text on http://ADDR/metrics while it goes (loopback, e.g. 127.0.0.1:9464)")
	fs.StringVar(&f.traceFile, "trace", "", "write one JSON line per stream attempt to this file (session, open and close times, status, protocol, events, first and last id, close reason, error)")
	fs.IntVar(&f.traceLimit, "trace-limit", defaultTraceLimit, "most lines --trace writes; later attempts are counted, not written")
	fs.DurationVar(&f.outInterval, "out-interval", defaultOutInterval, "how often --out is rewritten while the run goes, with the partial result marked incomplete (0: only at the end)")
	fs.Var(&f.serverArgs, "server-arg", "a flag for the embedded reference server, after each scenario's own, e.g. --server-arg=--h2-max-streams=100 (repeatable; see 'sseharness serve -h'); not with --target")
	// Scale: workers, source addresses, start time, several targets, self-watch (issue 14).
	fs.Float64Var(&f.runnerMaxCPU, "runner-max-cpu", selfwatch.DefaultMaxCPU, "runner-healthy fails when the runner used more than this share of its cores")
	fs.DurationVar(&f.runnerMaxDelay, "runner-max-delay", selfwatch.DefaultMaxDelay, "runner-healthy fails when the runner's own scheduling delay p99 exceeds this")
	fs.IntVar(&f.workers, "workers", 0, "run as N worker processes of this executable, each a shard of every scenario, merged into one result (0: as many as the streams need under the open-file limit, at least 1; more than 1 needs --target)")
	fs.BoolVar(&f.workerMode, "worker", false, "internal: run as one worker of --workers (live counts as JSON lines on stdout, the result only to --out)")
	fs.StringVar(&f.startAt, "start-at", "", "RFC 3339 time (e.g. 2026-12-01T10:00:00Z) at which to open the streams: each process (shard, worker) waits for it, so that shards started apart still load together; the result says how late each began (default with --workers: 1s after the workers are started)")
	fs.StringVar(&f.sourceAddrs, "source-addrs", "", "local source addresses for the streams' connections, round-robin: a list or range, e.g. 127.0.0.2-127.0.0.40 (default: the system's; on a loopback target the harness picks enough loopback addresses itself when the streams need more ports than one address has)")
	fs.Var(&f.targets, "target", "base URL of the SSE service under test (default: start the embedded reference server); repeat it to spread the sessions over several servers (e.g. 'serve --procs N'), each session pinned to one by its id")
	fs.Var(&f.headers, "header", "extra request header for the streams, \"Name: value\" (repeatable)")
	fs.Var(&f.probes, "probe", "extra metric to read from --metrics-url and keep in the results (repeatable)")
	fs.Var(f.thresholds, "threshold", "override a check's threshold, CHECK=VALUE or SCENARIO/CHECK=VALUE (repeatable; see 'sseharness list -v')")
	f.targetDesc = addTargetFlags(fs)
	// Request streams (request-stream, request-capacity) and the request description.
	f.requests = addRequestFlags(fs)
	return f
}

// parseRunFlags parses run's arguments (flags and scenario names in any order) and
// applies --target-file. ok=false ends the command with code: -h, a flag the flag
// package refused, or a target file that cannot be read or applied.
func parseRunFlags(env *Env, args []string) (f *runFlags, code int, ok bool) {
	fs := newFlagSet(env, "run", "[flags] [SCENARIO...]", runDescription)
	f = bindRunFlags(fs)
	f.args = args
	if f.names, code, ok = parseInterspersed(fs, args); !ok {
		return nil, code, false
	}
	if err := f.targetDesc.applyFile(fs); err != nil {
		return nil, usageError(env, "run", "%v", err), false
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, 0, true
}

// shardFlag is --shard I/N: shard I (0-based) of N.
type shardFlag runner.Shard

func (s *shardFlag) String() string {
	if s == nil || s.Count == 0 {
		return ""
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

func (s *shardFlag) Set(v string) error {
	i, n, ok := strings.Cut(v, "/")
	index, err1 := strconv.Atoi(i)
	count, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || count < 1 || index < 0 || index >= count {
		return errors.New("want I/N with 0 <= I < N, e.g. 0/4")
	}
	*s = shardFlag{Index: index, Count: count}
	return nil
}

// stepsFlag is --capacity-steps: comma-separated stream counts; "" is the default steps.
type stepsFlag []int

func (s *stepsFlag) String() string {
	if s == nil {
		return ""
	}
	parts := make([]string, len(*s))
	for i, n := range *s {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (s *stepsFlag) Set(v string) error {
	var steps []int
	if v != "" {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return errors.New("want comma-separated stream counts")
			}
			steps = append(steps, n)
		}
	}
	*s = steps
	return nil
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

var (
	_ flag.Value = thresholdFlag{}
	_ flag.Value = (*shardFlag)(nil)
	_ flag.Value = (*stepsFlag)(nil)
	_ flag.Value = (*headerFlag)(nil)
)
