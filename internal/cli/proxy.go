package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/sseharness/sseharness/proxy"
)

// runProxy runs `sseharness proxy`: a reverse proxy that buffers SSE responses as nginx's
// proxy_buffering does, until ctx ends (SIGINT/SIGTERM).
func runProxy(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "proxy", "--upstream URL [flags]", `
Run a reverse proxy in front of an SSE service that behaves as nginx does with its stock
proxy_buffering on: each response, headers included, is held until --buffer bytes have
accumulated and is then sent in one batch; the rest is sent when the upstream ends. A response
carrying X-Accel-Buffering: no is passed through and flushed at once, as nginx does. Use it to
see what a buffering proxy does to a stream (the proxy-buffering scenario).

With --idle-timeout D, a request whose upstream sends no byte for D is cut, as nginx's
proxy_read_timeout and load balancers' idle timeouts do: 504 before the response head,
an abrupt end (no chunked terminator) after it. Heartbeats shorter than D keep a quiet
stream alive (the idle-timeout scenario).

Prints the URL it listens on as its first line of output and runs until interrupted
(SIGINT/SIGTERM).`)
	var cfg proxy.Config
	fs.StringVar(&cfg.Listen, "addr", "127.0.0.1:8081", "`address` to listen on (port 0 picks a free port)")
	fs.StringVar(&cfg.Upstream, "upstream", "", "base `URL` of the SSE service to forward to (required), e.g. http://127.0.0.1:8080")
	fs.IntVar(&cfg.BufferSize, "buffer", proxy.DefaultBufferSize, "response `bytes` held before they are sent (nginx's stock buffer: one 4 KiB page)")
	fs.BoolVar(&cfg.NoBuffering, "no-buffering", false, "pass every read through at once, as nginx's proxy_buffering off")
	fs.BoolVar(&cfg.InsecureUpstream, "insecure", false, "skip TLS certificate verification towards an https upstream")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "cut a stream whose upstream sent nothing for this `duration`, as nginx's proxy_read_timeout (0 = never)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "proxy", "unexpected argument %q", fs.Arg(0))
	}
	if cfg.BufferSize == 0 {
		return usageError(env, "proxy", "--buffer must be at least 1 byte (use --no-buffering to pass reads through)")
	}
	if err := cfg.Validate(); err != nil {
		return usageError(env, "proxy", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	p, err := proxy.Start(ctx, cfg)
	if err != nil {
		return harnessError(env, "proxy", err)
	}
	defer p.Close()
	fmt.Fprintln(env.Stdout, p.URL())
	<-p.Done()
	return ExitOK
}
