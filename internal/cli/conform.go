package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sseharness/sseharness/conform"
	"github.com/sseharness/sseharness/report"
)

const conformDescription = `
Checks a live SSE endpoint against the WHATWG HTML "Server-sent events" section (9.2) and,
for cross-origin use, the Fetch standard's CORS protocol: 23 checks, each with a level
(MUST, SHOULD, ADVISORY), a verdict (pass, warn, fail, n/a), what was seen and the spec
section. A check the target cannot show (no --stop-url, no event ids, no CORS) is n/a
with the reason.

It watches the stream for --idle (keep-alive, incremental delivery), then reconnects the
way an EventSource does (Last-Event-ID, an unknown id, no id, no Accept, an Origin), one
request at a time, so a run takes about --idle plus a few seconds.

Exit 0 when no MUST check fails, 1 when one does, 2 on a usage error, 3 when the target
cannot be connected to.`

// conformFlags is conform's command line as given.
type conformFlags struct {
	target, resume, stop, origin string
	idle, timeout                time.Duration
	insecure                     bool
	out, format, method, body    string
	headers                      headerFlag
}

func bindConformFlags(fs *flag.FlagSet) *conformFlags {
	f := &conformFlags{}
	fs.StringVar(&f.target, "target", "", "the event stream URL to check (required)")
	fs.StringVar(&f.resume, "resume-url", "", "where reconnects (with Last-Event-ID) go (default: --target)")
	fs.StringVar(&f.stop, "stop-url", "", "URL of a finished or unknown stream, which must answer 204 (without it check 12 is n/a)")
	fs.StringVar(&f.origin, "origin", conform.DefaultOrigin, "Origin header value for the CORS checks (only a header value: nothing is dialed there)")
	fs.DurationVar(&f.idle, "idle", conform.DefaultIdle, "how long to watch the stream for keep-alive bytes and for its first output; keep it above the server's keep-alive interval (spec: ~15s), since a whole window without a byte fails check 8")
	fs.DurationVar(&f.timeout, "timeout", conform.DefaultTimeout, "wait for each response head, and for a resumed stream's replay")
	fs.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification (self-signed targets)")
	fs.StringVar(&f.out, "out", "", "write the result as JSON to this file (re-render with 'sseharness report')")
	fs.StringVar(&f.format, "format", "table", "output format: "+strings.Join(report.Formats(), ", "))
	fs.StringVar(&f.method, "method", "GET", "HTTP method of the stream requests; POST (with --body) checks an endpoint that answers each request with a stream, e.g. /v1/chat/completions")
	fs.StringVar(&f.body, "body", "", "request body of the stream requests, sent as application/json unless --header sets Content-Type (needs --method POST or another method with a body)")
	fs.Var(&f.headers, "header", "extra request header for every request, \"Name: value\" (repeatable; e.g. authorization)")
	return f
}

// Validate checks every URL, the output file and the values before the watch, so a
// typo costs no --idle of waiting, and reports every problem at once (one per line).
// An unknown --format is reported alone, as before any other.
func (f *conformFlags) Validate() (conform.Config, report.Renderer, error) {
	render, err := report.RendererFor(f.format)
	if err != nil {
		return conform.Config{}, nil, err
	}
	var probs problems
	for _, u := range []struct{ flag, url string }{{"--target", f.target}, {"--resume-url", f.resume}, {"--stop-url", f.stop}} {
		if u.url != "" {
			probs.add(validateTarget(u.flag, u.url))
		}
	}
	probs.add(runPreflight{Outputs: []outputFile{{"--out", f.out}}}.check())
	if f.idle <= 0 {
		probs.addf("--idle must be > 0, got %v", f.idle)
	}
	if f.timeout <= 0 {
		probs.addf("--timeout must be > 0, got %v", f.timeout)
	}
	cfg := conform.Config{
		Target:    f.target,
		ResumeURL: f.resume,
		StopURL:   f.stop,
		Origin:    f.origin,
		Idle:      max(f.idle, 0), // a bad value is reported above, once
		Timeout:   max(f.timeout, 0),
		Insecure:  f.insecure,
		Header:    http.Header(f.headers),
		Method:    f.method,
		Body:      f.body,
	}
	probs.add(cfg.Validate())
	return cfg, render, probs.err()
}

// runConform runs `sseharness conform`: parse, validate, check the target, render.
func runConform(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "conform", "--target URL [flags]", conformDescription)
	f := bindConformFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "conform", "unexpected argument %q (the stream URL goes in --target)", fs.Arg(0))
	}
	cfg, render, err := f.Validate()
	if err != nil {
		return usageError(env, "conform", "%s", oneLine(err))
	}
	fmt.Fprintf(env.Stderr, "sseharness conform: watching %s for %v, then reconnecting ...\n", cfg.Target, cfg.Idle)
	res, err := conform.Run(ctx, cfg)
	switch {
	case errors.Is(err, conform.ErrUnreachable):
		return harnessError(env, "conform", err)
	case err != nil && ctx.Err() != nil:
		return harnessError(env, "conform", errors.New("interrupted before the checks could run"))
	case err != nil:
		return harnessError(env, "conform", err)
	}
	rep := res.Report(Version())
	if f.out != "" {
		if err := report.Save(f.out, rep); err != nil {
			return harnessError(env, "conform", err)
		}
	}
	if err := render(env.Stdout, rep); err != nil {
		return harnessError(env, "conform", err)
	}
	if res.Failed() {
		return ExitFailed
	}
	return ExitOK
}
