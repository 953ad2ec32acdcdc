package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/runner"
)

// proxy-buffering: the same streams direct and through reverse proxies that buffer like
// nginx's proxy_buffering. Delivery through the proxy must stay close to direct, which
// needs a server that flushes each event and says `X-Accel-Buffering: no`.
func proxyBuffering() *Scenario {
	return &Scenario{
		Name:    "proxy-buffering",
		Proves:  "events reach clients at once directly and through buffering reverse proxies (the built-in one and a real nginx)",
		Catches: []string{"no-flush"},
		Checks: []CheckSpec{
			{Name: "direct-delivery", Default: "1s", Means: "p99 delivery latency direct at most"},
			{Name: "builtin-proxy-added-latency", Default: "500ms", Means: "p99 through the built-in buffering proxy minus direct at most"},
			{Name: "nginx-added-latency", Default: "500ms", Means: "p99 through nginx (stock proxy_buffering) minus direct at most"},
		},
		ServerArgs: []string{"--tick", "200ms"},
		run:        runProxyBuffering,
	}
}

// pathStats is what one delivery path saw.
type pathStats struct {
	lat     []time.Duration
	events  int
	batched int // events that arrived within 5ms of the previous one of their stream
	silent  int // streams without a single event
}

func (p *pathStats) p99() (time.Duration, bool) { return percentile(p.lat, 0.99) }

func percentile(d []time.Duration, q float64) (time.Duration, bool) {
	if len(d) == 0 {
		return 0, false
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return s[i], true
}

func runProxyBuffering(ctx context.Context, h *Harness) error {
	n := h.Streams(5)
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
	case len(h.opts.NginxConf) == 0:
		nginxWhy = "no nginx configuration given"
	default:
		url, stop, why, err := startNginx(ctx, h)
		if err != nil {
			return err
		}
		if stop != nil {
			defer stop()
			paths = append(paths, struct{ name, base string }{"nginx", url})
		}
		nginxWhy = why
	}
	h.Request(n*len(paths), n*len(paths), hold, fmt.Sprintf("%d streams on each path: %s", n, pathNames(paths)))

	var mu sync.Mutex
	stats := map[int]*pathStats{}
	for i := range paths {
		stats[i] = &pathStats{}
	}
	perStream := map[int]int{}
	h.Observe(func(r runner.Record) {
		if r.Kind != runner.RecordEvent {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		p := stats[r.Stream/n]
		p.events++
		perStream[r.Stream]++
		if r.Latency >= 0 {
			p.lat = append(p.lat, r.Latency)
		}
		if r.Gap >= 0 && r.Gap < 5*time.Millisecond {
			p.batched++
		}
	})
	for pi, p := range paths {
		for j := range n {
			i := pi*n + j
			sess := h.Session(p.name, j)
			if _, err := h.Open(ctx, h.NewBrowser(false), i, sess, h.StreamURLVia(p.base, sess), nil); err != nil {
				return err
			}
		}
	}
	if err := Sleep(ctx, hold); err != nil {
		return err
	}
	h.Finish()
	for pi := range paths {
		for j := range n {
			if perStream[pi*n+j] == 0 {
				stats[pi].silent++
			}
		}
	}
	if stats[0].events == 0 && stats[1].events == 0 {
		// Nothing anywhere: tell an unreachable target from a buffering one.
		m := h.agg.Metrics()
		if m.Streams == 0 {
			return notStarted(fmt.Sprintf("no stream opened (not opened: %s)", breakdownCounts(m.NotOpened)))
		}
	}

	direct := stats[0]
	dp99, dok := direct.p99()
	if !dok || direct.silent > 0 {
		h.Check("direct-delivery", false, fmt.Sprintf("%d of %d direct streams got no event in %s", direct.silent, n, hold), "the server holds events back instead of flushing each one")
	} else {
		h.Check("direct-delivery", dp99 <= h.Dur("direct-delivery"), fmt.Sprintf("p99 %s over %d events", ms(dp99), direct.events), batchNote(direct))
	}
	judge := func(check string, pi int) {
		p := stats[pi]
		pp99, ok := p.p99()
		if !ok || p.silent > 0 {
			h.Check(check, false, fmt.Sprintf("%d of %d streams got no event in %s through the proxy", p.silent, n, hold),
				"the proxy buffered the stream: the server must flush each event and send X-Accel-Buffering: no")
			return
		}
		if !dok {
			h.Check(check, false, fmt.Sprintf("p99 %s through the proxy; direct had no timed event to compare", ms(pp99)), batchNote(p))
			return
		}
		added := pp99 - dp99
		h.Check(check, added <= h.Dur(check), fmt.Sprintf("p99 %s vs %s direct (+%s)", ms(pp99), ms(dp99), ms(max(added, 0))), batchNote(p))
	}
	judge("builtin-proxy-added-latency", 1)
	if len(paths) > 2 {
		judge("nginx-added-latency", 2)
	} else {
		h.NA("nginx-added-latency", nginxWhy)
	}
	return nil
}

func batchNote(p *pathStats) string {
	if p.events == 0 {
		return ""
	}
	return fmt.Sprintf("%d events, %.0f%% arrived in batches (<5ms after the previous)", p.events, 100*float64(p.batched)/float64(p.events))
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

// startNginx starts a real nginx in front of the target from the configured file and
// returns its URL and a stop function. A missing nginx is not an error: the check is
// n/a and why says so.
func startNginx(ctx context.Context, h *Harness) (url string, stop func(), why string, err error) {
	bin := h.opts.NginxPath
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
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, h.opts.NginxConf, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, "", err
	}
	ng, err := proxy.StartNginx(ctx, proxy.NginxConfig{ConfFile: conf, Upstream: h.opts.Target, TempDir: dir, Binary: bin})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, "", fmt.Errorf("start nginx: %w", err)
	}
	return ng.URL(), func() { _ = ng.Stop(); os.RemoveAll(dir) }, "", nil
}
