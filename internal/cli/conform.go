package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sseharness/sseharness/conform"
	"github.com/sseharness/sseharness/report"
)

func runConform(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "conform", "--target URL [flags]", `
Checks a live SSE endpoint against the WHATWG HTML "Server-sent events" section (9.2) and,
for cross-origin use, the Fetch standard's CORS protocol: 23 checks, each with a level
(MUST, SHOULD, ADVISORY), a verdict (pass, warn, fail, n/a), what was seen and the spec
section. A check the target cannot show (no --stop-url, no event ids, no CORS) is n/a
with the reason.

It watches the stream for --idle (keep-alive, incremental delivery), then reconnects the
way an EventSource does (Last-Event-ID, an unknown id, no id, no Accept, an Origin), one
request at a time, so a run takes about --idle plus a few seconds.

Exit 0 when no MUST check fails, 1 when one does, 2 on a usage error, 3 when the target
cannot be connected to.`)
	var (
		target   = fs.String("target", "", "the event stream URL to check (required)")
		resume   = fs.String("resume-url", "", "where reconnects (with Last-Event-ID) go (default: --target)")
		stop     = fs.String("stop-url", "", "URL of a finished or unknown stream, which must answer 204 (without it check 12 is n/a)")
		origin   = fs.String("origin", conform.DefaultOrigin, "Origin header value for the CORS checks (only a header value: nothing is dialed there)")
		idle     = fs.Duration("idle", conform.DefaultIdle, "how long to watch the stream for keep-alive bytes and for its first output; keep it above the server's keep-alive interval (spec: ~15s), since a whole window without a byte fails check 8")
		timeout  = fs.Duration("timeout", conform.DefaultTimeout, "wait for each response head, and for a resumed stream's replay")
		insecure = fs.Bool("insecure", false, "skip TLS certificate verification (self-signed targets)")
		out      = fs.String("out", "", "write the result as JSON to this file (re-render with 'sseharness report')")
		format   = fs.String("format", "table", "output format: "+strings.Join(report.Formats(), ", "))
		method   = fs.String("method", "GET", "HTTP method of the stream requests; POST (with --body) checks an endpoint that answers each request with a stream, e.g. /v1/chat/completions")
		body     = fs.String("body", "", "request body of the stream requests, sent as application/json unless --header sets Content-Type (needs --method POST or another method with a body)")
		headers  headerFlag
	)
	fs.Var(&headers, "header", "extra request header for every request, \"Name: value\" (repeatable; e.g. authorization)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "conform", "unexpected argument %q (the stream URL goes in --target)", fs.Arg(0))
	}
	// Every URL and the output file are checked before the watch, so a typo costs no
	// --idle of waiting.
	var problems []string
	for _, u := range []struct{ flag, url string }{{"--target", *target}, {"--resume-url", *resume}, {"--stop-url", *stop}} {
		if u.url == "" {
			continue
		}
		if err := validateTarget(u.flag, u.url); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if err := (runPreflight{Outputs: []outputFile{{"--out", *out}}}).check(); err != nil {
		problems = append(problems, err.Error())
	}
	render, err := report.RendererFor(*format)
	if err != nil {
		return usageError(env, "conform", "%v", err)
	}
	if *idle <= 0 {
		problems = append(problems, fmt.Sprintf("--idle must be > 0, got %v", *idle))
	}
	if *timeout <= 0 {
		problems = append(problems, fmt.Sprintf("--timeout must be > 0, got %v", *timeout))
	}
	cfg := conform.Config{
		Target:    *target,
		ResumeURL: *resume,
		StopURL:   *stop,
		Origin:    *origin,
		Idle:      max(*idle, 0), // a bad value is reported above, once
		Timeout:   max(*timeout, 0),
		Insecure:  *insecure,
		Header:    http.Header(headers),
		Method:    *method,
		Body:      *body,
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, strings.Split(err.Error(), "\n")...)
	}
	if len(problems) > 0 {
		return usageError(env, "conform", "%s", strings.Join(problems, "; "))
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
	if *out != "" {
		if err := report.Save(*out, rep); err != nil {
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
