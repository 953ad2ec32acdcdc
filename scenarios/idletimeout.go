package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/sseharness/sseharness/docker"
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
)

// idle-timeout: quiet streams through proxies that cut a stream silent for longer than
// their idle timeout (nginx's proxy_read_timeout, a load balancer's idle timeout).
// Heartbeats shorter than the timeout keep a quiet stream alive; without them every
// quiet stream is cut and reconnects once per timeout. The built-in proxy and a real
// nginx (docker/nginx/idle-timeout.conf) both get the idle timeout of the
// longest-silence check, so `--threshold idle-timeout/longest-silence=55s` replays a
// load balancer with a 55s idle timeout.
func idleTimeout() *Scenario {
	ck := idleTimeoutChecks{
		longestSilence:       &CheckSpec{Name: "longest-silence", Default: "60s", Embedded: "2s", Means: "the path's idle timeout (the built-in proxy's and nginx's proxy_read_timeout): the longest silence on the wire, heartbeats included, must stay below it"},
		builtinProxyKeptOpen: &CheckSpec{Name: "builtin-proxy-kept-open", Default: "0", Means: "streams through the built-in proxy with the idle timeout that ended (cut or closed) while quiet, at most"},
		nginxKeptOpen:        &CheckSpec{Name: "nginx-kept-open", Default: "0", Means: "streams through nginx with proxy_read_timeout at the idle timeout that ended (cut or closed) while quiet, at most"},
	}
	return &Scenario{
		Name:       "idle-timeout",
		Proves:     "quiet streams survive proxies' idle timeouts (the built-in proxy and a real nginx) without a reconnect: heartbeats come more often than the timeout",
		Catches:    []string{"no-heartbeat"},
		Checks:     ck.all(),
		ServerArgs: []string{"--tick", "0", "--heartbeat", "1s"},
		run:        func(ctx context.Context, h *Harness) error { return runIdleTimeout(ctx, h, ck) },
	}
}

// idleTimeoutChecks are IdleTimeout's checks, declared once: the run names them as
// fields, so a check that is not declared cannot be named.
type idleTimeoutChecks struct{ longestSilence, builtinProxyKeptOpen, nginxKeptOpen *CheckSpec }

func (c idleTimeoutChecks) all() []*CheckSpec {
	return []*CheckSpec{c.longestSilence, c.builtinProxyKeptOpen, c.nginxKeptOpen}
}

// idleTimeouts is how many idle timeouts the streams are held by default: several, so
// a heartbeat that comes just too late is caught too.
const idleTimeouts = 3.5

func runIdleTimeout(ctx context.Context, h *Harness, ck idleTimeoutChecks) error {
	n := h.streams(5)
	timeout := h.dur(ck.longestSilence)
	if timeout <= 0 {
		return fmt.Errorf("idle-timeout: the longest-silence threshold (the path's idle timeout) must be > 0")
	}
	hold := time.Duration(idleTimeouts * float64(timeout))
	if h.opts.Hold > 0 {
		hold = h.opts.Hold
	}

	builtin, err := proxy.Start(ctx, proxy.Config{Listen: "127.0.0.1:0", Upstream: h.opts.Target, InsecureUpstream: h.opts.Insecure,
		NoBuffering: true, IdleTimeout: timeout})
	if err != nil {
		return fmt.Errorf("start the built-in proxy: %w", err)
	}
	defer builtin.Close()
	paths := []struct{ name, base string }{{"builtin", builtin.URL()}}
	conf, err := docker.NginxConf("idle-timeout.conf")
	if err != nil {
		return err
	}
	url, stop, nginxWhy, err := startNginx(ctx, h, conf, timeout)
	if err != nil {
		return err
	}
	if stop != nil {
		defer stop()
		paths = append(paths, struct{ name, base string }{"nginx", url})
	}
	h.request(n*len(paths), n*len(paths), hold, fmt.Sprintf("%d quiet streams on each path (%s) with an idle timeout of %s, held %.1f timeouts",
		n, pathNames(paths), timeout, float64(hold)/float64(timeout)))

	for pi, p := range paths {
		g := h.StreamGroup(p.name, n)
		for j := range n {
			i := pi*n + j
			sess := h.Session(p.name, j)
			h.Join(g, i)
			if _, err := h.Open(ctx, h.newBrowser(false), i, sess, h.streamURLVia(p.base, sess), nil); err != nil {
				return err
			}
		}
	}
	if err := Sleep(ctx, hold); err != nil {
		return err
	}
	h.Finish()
	if m := h.agg.Metrics(); m.Streams == 0 {
		return notStarted(fmt.Sprintf("no stream opened (not opened: %s)", breakdownCounts(m.NotOpened)))
	}

	// The longest silence of any stream on any path, its end by the harness included:
	// what the path's idle timeout saw.
	h.Judge(ck.longestSilence, report.Rule{Metric: "silence_max", Op: "<", Limit: h.limitValue(ck.longestSilence),
		Needs: []report.Evidence{report.EvidenceOpened}})
	// A stream the path ended while it was held (a clean end or a cut, so a reconnect
	// follows) did not survive; every stream of the path must have opened as well.
	keptOpen := func(c *CheckSpec, group string) {
		h.Judge(c, report.Rule{Metric: "close.eof", Group: group, Plus: []report.Term{{Metric: "close.network-error", Group: group}},
			Op: "<=", Limit: h.limitValue(c), Needs: []report.Evidence{report.EvidenceOpened},
			And: []report.Rule{{Metric: "unopened_streams", Group: group, Op: "<=", Limit: 0}, {Metric: "reconnects", Group: group, Op: "<=", Limit: h.limitValue(c)}}})
	}
	keptOpen(ck.builtinProxyKeptOpen, "builtin")
	if len(paths) > 1 {
		keptOpen(ck.nginxKeptOpen, "nginx")
	} else {
		h.notApplicable(ck.nginxKeptOpen, nginxWhy)
	}
	h.Note("the built-in proxy cut %d requests at its idle timeout", builtin.Stats().IdleTimeouts)
	return nil
}
