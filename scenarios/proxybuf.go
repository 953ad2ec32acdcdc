package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
)

// proxy-buffering: the same streams direct and through reverse proxies that buffer like
// nginx's proxy_buffering. Delivery through the proxy must stay close to direct, which
// needs a server that flushes each event and says `X-Accel-Buffering: no`.
func proxyBuffering() *Scenario {
	ck := proxyBufferingChecks{
		directDelivery:           &CheckSpec{Name: "direct-delivery", Default: "1s", Means: "p99 delivery latency direct at most"},
		builtinProxyAddedLatency: &CheckSpec{Name: "builtin-proxy-added-latency", Default: "500ms", Means: "p99 through the built-in buffering proxy minus direct at most"},
		nginxAddedLatency:        &CheckSpec{Name: "nginx-added-latency", Default: "500ms", Means: "p99 through nginx (stock proxy_buffering) minus direct at most"},
	}
	return &Scenario{
		Name:       "proxy-buffering",
		Proves:     "events reach clients at once directly and through buffering reverse proxies (the built-in one and a real nginx)",
		Catches:    []string{"no-flush", "gzip-buffer"},
		Checks:     ck.all(),
		ServerArgs: []string{"--tick", "200ms"},
		run:        func(ctx context.Context, h *Harness) error { return runProxyBuffering(ctx, h, ck) },
	}
}

// proxyBufferingChecks are ProxyBuffering's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type proxyBufferingChecks struct{ directDelivery, builtinProxyAddedLatency, nginxAddedLatency *CheckSpec }

func (c proxyBufferingChecks) all() []*CheckSpec {
	return []*CheckSpec{c.directDelivery, c.builtinProxyAddedLatency, c.nginxAddedLatency}
}

func runProxyBuffering(ctx context.Context, h *Harness, ck proxyBufferingChecks) error {
	n := h.streams(5)
	hold := 6 * time.Second
	if h.opts.Hold > 0 {
		hold = h.opts.Hold
	}

	builtin, err := proxy.Start(ctx, proxy.Config{Listen: "127.0.0.1:0", Upstream: h.opts.Target, InsecureUpstream: h.opts.Insecure})
	if err != nil {
		return fmt.Errorf("start the built-in buffering proxy: %w", err)
	}
	defer builtin.Close()
	paths := []struct{ name, base string }{{"direct", h.opts.Target}, {"builtin", builtin.URL()}}

	nginxWhy := ""
	switch {
	case len(h.opts.ProxyBufferingConfig.NginxConf) == 0:
		nginxWhy = "no nginx configuration given"
	default:
		url, stop, why, err := startNginx(ctx, h, h.opts.ProxyBufferingConfig.NginxConf, 0)
		if err != nil {
			return err
		}
		if stop != nil {
			defer stop()
			paths = append(paths, struct{ name, base string }{"nginx", url})
		}
		nginxWhy = why
	}
	h.request(n*len(paths), n*len(paths), hold, fmt.Sprintf("%d streams on each path: %s", n, pathNames(paths)))
	publishing, err := h.preparePublish(hold)
	if err != nil {
		return err
	}

	// One group of streams per path: the rules compare the paths' aggregates.
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
	if publishing {
		h.startPublish(ctx)
	}
	if err := Sleep(ctx, hold); err != nil {
		return err
	}
	h.Finish()
	if m := h.agg.Metrics(); m.Streams == 0 {
		// Nothing anywhere: tell an unreachable or refusing target from a buffering one.
		return notStarted(fmt.Sprintf("no stream opened (not opened: %s)", breakdownCounts(m.NotOpened)))
	}

	// Every stream of a path must get events (a buffering path delivers none, or late
	// batches), and the path's p99 delivery latency must stay within the limit.
	silent := func(group string) report.Rule {
		return report.Rule{Metric: "silent_streams", Group: group, Op: "<=", Limit: 0}
	}
	// Latency from the harness's marks, else from the events' send time; with
	// neither, the arrival rhythm: a buffering path delivers late first events and
	// bursts separated by long gaps, which the p99 gap and the time to the first event
	// show against the direct path's.
	metric, needs, rhythm := pickDelivery(h, publishing)
	direct := report.Rule{Metric: metric, Group: "direct", Op: "<=", Limit: h.limitValue(ck.directDelivery),
		Needs: needs, And: []report.Rule{silent("direct")}}
	if rhythm {
		// Without a latency the direct path is the baseline: judged only on every
		// stream getting events.
		r := silent("direct") // judged on the streams requested: none silent is the evidence
		h.add(ck.directDelivery, report.Check{Name: ck.directDelivery.Name, Threshold: "every direct stream gets events (no latency to compare with " + h.limit(ck.directDelivery).String() + ")", Rule: &r})
	} else {
		h.Judge(ck.directDelivery, direct)
	}
	added := func(check *CheckSpec, group string) {
		r := report.Rule{Metric: metric, Group: group, Minus: []report.Term{{Metric: metric, Group: "direct"}},
			Op: "<=", Limit: h.limitValue(check), Needs: needs, And: []report.Rule{silent(group)}}
		if rhythm {
			r.And = append(r.And, report.Rule{Metric: "ttfe_p99", Group: group, Minus: []report.Term{{Metric: "ttfe_p99", Group: "direct"}},
				Op: "<=", Limit: h.limitValue(check), Needs: needs})
		}
		h.Judge(check, r)
	}
	added(ck.builtinProxyAddedLatency, "builtin")
	if len(paths) > 2 {
		added(ck.nginxAddedLatency, "nginx")
	} else {
		h.notApplicable(ck.nginxAddedLatency, nginxWhy)
	}
	if rhythm {
		h.Note("no send time and no publish endpoint: arrival rhythm compared (p99 gap between events and time to first event, each path against direct)")
	} else if note := h.latencyNote(); note != "" {
		h.Note("%s", note)
	}
	return nil
}

// pickDelivery chooses what proxy-buffering compares: publish-to-delivery latency of
// the marks, send-time latency when the direct streams' events carry one, else the
// p99 gap between events (rhythm).
func pickDelivery(h *Harness, publishing bool) (metric string, needs []report.Evidence, rhythm bool) {
	if publishing {
		return "mark_latency_p99", []report.Evidence{report.EvidenceMarks}, false
	}
	h.groupMu.Lock()
	var direct *Group
	for _, g := range h.groups {
		if g.name == "direct" {
			direct = g
		}
	}
	h.groupMu.Unlock()
	if direct != nil && direct.agg.Metrics().Latency.Count > 0 {
		return "latency_p99", []report.Evidence{report.EvidenceEvent}, false
	}
	return "gap_p99", []report.Evidence{report.EvidenceEvent}, true
}

func pathNames(paths []struct{ name, base string }) string {
	s := ""
	for i, p := range paths {
		if i > 0 {
			s += ", "
		}
		s += p.name
	}
	return s
}

// startNginx starts a real nginx in front of the target from the configuration conf
// (with proxy_read_timeout set to readTimeout when > 0) and returns its URL and a stop
// function. A missing nginx is not an error: the check is n/a and why says so.
func startNginx(ctx context.Context, h *Harness, conf []byte, readTimeout time.Duration) (url string, stop func(), why string, err error) {
	bin := h.opts.ProxyBufferingConfig.NginxPath
	if bin == "" {
		p, err := proxy.NginxAvailable()
		if err != nil {
			return "", nil, "nginx is not installed (" + err.Error() + ")", nil
		}
		bin = p
	}
	if !strings.HasPrefix(h.opts.Target, "http://") {
		return "", nil, "the nginx configuration proxies plain http:// upstreams only", nil
	}
	dir, err := os.MkdirTemp("", "sseharness-nginx-")
	if err != nil {
		return "", nil, "", err
	}
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, conf, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, "", err
	}
	ng, err := proxy.StartNginx(ctx, proxy.NginxConfig{ConfFile: file, Upstream: h.opts.Target, TempDir: dir, Binary: bin, ReadTimeout: readTimeout})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, "", fmt.Errorf("start nginx: %w", err)
	}
	return ng.URL(), func() { _ = ng.Stop(); os.RemoveAll(dir) }, "", nil
}
