package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sseharness/sseharness/reference"
	"github.com/sseharness/sseharness/scenarios"
)

// serveDescription is serve's usage text, with the fault list of the reference server.
func serveDescription() string {
	return `
Run the reference Server-Sent Events server: the target known to be right, or, with
--fault, known to be wrong in exactly the named ways. Endpoints:

  GET  /sessions/{id}/events    a session's stream (retry, connected, ticks, pings, progress)
  POST /sessions/{id}/progress  job callback {"progress": 0..100, "message": "..."}
  GET  /topics/{name}/events    fan-out stream of a topic
  POST /topics/{name}           publish the body to a topic's subscribers
  POST /v1/chat/completions     OpenAI-style streaming chat completion: {"model", "messages",
                                "stream": true, "max_tokens"} -> max_tokens chunks (after
                                --first-token-delay, one per --token-interval), a usage
                                chunk, then data: [DONE]; anything else 400
  GET  /metrics                 Prometheus metrics (go_*, process_*, sseref_*)
  GET  /healthz                 200

Prints the URL it listens on as its first line of output (useful with --addr
127.0.0.1:0) and runs until interrupted (SIGINT/SIGTERM), then ends every open stream
with a final ": shutdown" comment and exits.

With --tls, HTTP/2 advertises SETTINGS_MAX_CONCURRENT_STREAMS = --h2-max-streams
(default 1000, generous; many servers, proxies and CDNs allow about 100): a client
queues the streams beyond it on the connection. Progress callbacks may come before a
stream opened their session (early progress): such sessions have a cap and a TTL of
their own (--max-early-sessions, --early-session-ttl), so callbacks for ids nobody
opens cannot take the room of streams; --max-early-sessions 0 answers them 404.

Faults (comma-separated): ` + strings.Join(reference.KnownFaults(), ", ") + `
  gzip-buffer    gzip-compress event streams when the client accepts gzip, never
                 flushing: events leave only when the compressor's buffer fills (the
                 correct server does not compress event streams)
  late-head      hold a session stream's status and headers until its first event
                 (or ping): a quiet stream never looks open
  cut-after=D    cut every stream's connection after D, mid-body, without the chunked
                 terminator (HTTP/2: RST_STREAM), as a framework timeout does
  pool=N         senders on N workers that never finish: session N+1 gets no events

With --procs N (N > 1) it runs N server processes of itself, each with the same flags,
on ports PORT, PORT+1, ..., PORT+N-1 of --addr (port 0: each process picks a free
port). It prints one URL per line on stdout, in port order, once every process
listens: the first line is the first process's URL, as without --procs. A port in
use stops it before any process starts. SIGINT/SIGTERM stops every process (each
gets SIGTERM and ends its streams); a process that dies stops the others and ends
serve with exit 3 and that process's stderr. Sessions live in one process: send all
of a session's requests to the same URL.`
}

// runServe runs `sseharness serve`: the reference SSE server, correct or with --fault,
// until ctx ends (SIGINT/SIGTERM), then shuts it down gracefully.
func runServe(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "serve", "[flags]", serveDescription())
	cfg, faults, procs := defineServeFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "serve", "unexpected argument %q", fs.Arg(0))
	}
	f, err := reference.ParseFaults(*faults)
	if err != nil {
		return usageError(env, "serve", "--fault: %s", oneLine(err))
	}
	cfg.Faults = f
	if err := cfg.Validate(); err != nil {
		return usageError(env, "serve", "%s", oneLine(err))
	}
	if *procs != 1 {
		return serveProcs(ctx, env, fs, cfg.Addr, *procs)
	}
	srv, err := reference.New(*cfg)
	if err != nil {
		return usageError(env, "serve", "%s", oneLine(err))
	}
	faultNote := "none"
	if s := cfg.Faults.String(); s != "" {
		faultNote = s
	}
	err = srv.ListenAndServe(ctx, func(url string) {
		fmt.Fprintln(env.Stdout, url)
		fmt.Fprintf(env.Stderr, "sseharness serve: listening on %s (faults: %s); SIGINT/SIGTERM to stop\n", url, faultNote)
	})
	if err != nil {
		return harnessError(env, "serve", err)
	}
	fmt.Fprintln(env.Stderr, "sseharness serve: shut down")
	return ExitOK
}

// defineServeFlags defines serve's flags on fs: the reference server's configuration,
// --fault and --procs. run parses its --server-arg values with them too.
func defineServeFlags(fs *flag.FlagSet) (cfg *reference.Config, faults *string, procs *int) {
	c := reference.DefaultConfig()
	cfg = &c
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "`address` to listen on (port 0 picks a free port)")
	fs.DurationVar(&cfg.Tick, "tick", cfg.Tick, "`interval` between tick events of an open stream (0 = no ticks)")
	fs.DurationVar(&cfg.Retry, "retry", cfg.Retry, "reconnection `time` sent in the retry field")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "`interval` of ': ping' keep-alive comments")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "a write blocked this `duration` ends the stream (also the TCP user timeout)")
	fs.DurationVar(&cfg.MaxLifetime, "max-lifetime", cfg.MaxLifetime, "the server ends a stream after this `duration` (the client reconnects)")
	fs.IntVar(&cfg.Replay, "replay", cfg.Replay, "`events` retained per session (and topic) for Last-Event-ID resumption")
	fs.IntVar(&cfg.MaxSessions, "max-sessions", cfg.MaxSessions, "sessions opened by streams held at once; one more gets 503 with Retry-After")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "an idle or finished session is forgotten this `duration` after its last stream")
	fs.IntVar(&cfg.MaxEarlySessions, "max-early-sessions", cfg.MaxEarlySessions, "sessions progress callbacks may create before a stream opens them, apart from --max-sessions (0 = 404 for them)")
	fs.DurationVar(&cfg.EarlySessionTTL, "early-session-ttl", cfg.EarlySessionTTL, "a session made by a callback is forgotten this `duration` after its last callback unless a stream opens it")
	fs.IntVar(&cfg.H2MaxStreams, "h2-max-streams", cfg.H2MaxStreams, "`streams` one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS, with --tls)")
	fs.BoolVar(&cfg.TLS, "tls", cfg.TLS, "serve HTTPS with HTTP/2 (in-memory self-signed certificate for 127.0.0.1, ::1, localhost unless --cert/--key)")
	fs.StringVar(&cfg.CertFile, "cert", "", "PEM certificate `file` (with --key; implies --tls)")
	fs.StringVar(&cfg.KeyFile, "key", "", "PEM private key `file` (with --cert)")
	fs.DurationVar(&cfg.FirstTokenDelay, "first-token-delay", cfg.FirstTokenDelay, "chat completions: `delay` before the first token")
	fs.DurationVar(&cfg.TokenInterval, "token-interval", cfg.TokenInterval, "chat completions: `interval` between tokens")
	fs.StringVar(&cfg.CallbackToken, "callback-token", "", "require 'Authorization: Bearer `token`' on progress callbacks and topic publishes")
	faults = fs.String("fault", "", "comma-separated `faults` to reproduce (see above); none by default")
	procs = fs.Int("procs", 1, "run this many server `processes` on consecutive ports from --addr's (see above)")
	return cfg, faults, procs
}

// oneLine is a validation error (problems joined with newlines) as one line.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// checkServeArgs parses run's --server-arg values as a child serve gets them, after
// each scenario's own server flags, and validates the configuration they make, starting
// nothing: a flag serve does not know, a bad value or a configuration serve would refuse
// is a usage error of run (exit 2), not a child that fails to start (exit 3).
func checkServeArgs(scs []*scenarios.Scenario, args []string) error {
	owns := [][]string{nil}
	if len(scs) > 0 {
		owns = owns[:0]
		for _, sc := range scs {
			owns = append(owns, sc.ServerArgs)
		}
	}
	var probs problems
	for _, own := range owns {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg, _, _ := defineServeFlags(fs)
		if err := fs.Parse(append(append([]string(nil), own...), args...)); err != nil {
			probs.addf("--server-arg: %v (see 'sseharness serve -h')", err)
			continue
		}
		if fs.NArg() > 0 {
			probs.addf("--server-arg %q: want one serve flag such as --h2-max-streams=100", fs.Arg(0))
			continue
		}
		if err := cfg.Validate(); err != nil {
			probs.addf("--server-arg %s: %s", strings.Join(args, " "), oneLine(err))
		}
	}
	return probs.err()
}

// validateFaults checks a --fault list as serve will parse it (every fault of
// reference.KnownFaults, cut-after=D and pool=N included), as one line.
func validateFaults(s string) error {
	if _, err := reference.ParseFaults(s); err != nil {
		return errors.New(oneLine(err))
	}
	return nil
}
