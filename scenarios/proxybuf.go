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
	return &Scenario{
		Name:    "proxy-buffering",
		Proves:  "events reach clients at once directly and through buffering reverse proxies (the built-in one and a real nginx)",
		Catches: []string{"no-flush", "gzip-buffer"},
		// Every stream of a path must get events (a buffering path delivers none, or
		// late batches), and the path's p99 delivery latency must stay within the
		// limit: from the harness's marks, else from the events' send time. With
		// neither, the arrival rhythm (RhythmRule): a buffering path delivers late first
		// events and bursts separated by long gaps, which the p99 gap and the time to
		// the first event show against the direct path's, and the direct path is the
		// baseline, judged only on every stream getting events.
		Checks: []*CheckSpec{
			{Name: "direct-delivery", Default: "1s", Means: "p99 delivery latency direct at most",
				Rule:       &report.Rule{Metric: DeliveryP99, Group: "direct", Op: "<=", Limit: AtThreshold, And: []report.Rule{silent("direct")}},
				RhythmRule: ptr(silent("direct"))},
			addedLatency("builtin-proxy-added-latency", "p99 through the built-in buffering proxy minus direct at most", "builtin"),
			addedLatency("nginx-added-latency", "p99 through nginx (stock proxy_buffering) minus direct at most", "nginx"),
		},
		ServerArgs:  []string{"--tick", "200ms"},
		Publish:     true,
		StreamsEach: true,
		// One group of streams per path, opened together: the rules compare the paths'
		// aggregates after the hold.
		Load: []Phase{
			{Group: "direct", Tag: "direct", Streams: 5, Until: Unawaited, Describe: "streams direct"},
			{Group: "builtin", Tag: "builtin", Streams: 5, Through: &proxy.Config{Listen: "127.0.0.1:0"}, Until: Unawaited,
				Describe: "streams through the built-in buffering proxy"},
			{Group: "nginx", Tag: "nginx", Streams: 5, Nginx: &NginxPath{}, Until: Unawaited,
				Describe: "streams through nginx (the configured file, stock proxy_buffering)"},
		},
		Hold: 6 * time.Second,
	}
}

// silent is the rule that every stream of group got events.
func silent(group string) report.Rule {
	return report.Rule{Metric: "silent_streams", Group: group, Op: "<=", Limit: 0}
}

// addedLatency is the check of what a path adds to the direct path's p99 latency (or,
// without a latency, to its p99 gap between events and time to the first event).
func addedLatency(name, means, group string) *CheckSpec {
	rhythm := report.Rule{Metric: "gap_p99", Group: group, Minus: []report.Term{{Metric: "gap_p99", Group: "direct"}},
		Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceEvent}, And: []report.Rule{silent(group),
			{Metric: "ttfe_p99", Group: group, Minus: []report.Term{{Metric: "ttfe_p99", Group: "direct"}}, Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceEvent}}}}
	return &CheckSpec{Name: name, Default: "500ms", Means: means,
		Rule: &report.Rule{Metric: DeliveryP99, Group: group, Minus: []report.Term{{Metric: DeliveryP99, Group: "direct"}},
			Op: "<=", Limit: AtThreshold, And: []report.Rule{silent(group)}},
		RhythmRule: &rhythm}
}

func ptr[T any](v T) *T { return &v }

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
