package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
)

// slow-consumer: a share of the clients read at a trickle while large events pile up for
// them. The others must not suffer, and the server's memory must stay bounded.
func slowConsumer() *Scenario {
	return &Scenario{
		Name:   "slow-consumer",
		Proves: "clients reading at a trickle do not slow the others down nor grow the server's memory without bound",
		// The normal clients' delivery from their group's aggregate (every one of them
		// must get events); the server's growth from its scraped figures.
		Checks: []*CheckSpec{
			{Name: "fast-p99", Default: "500ms", Means: "p99 delivery latency of the normal clients at most",
				Rule: &report.Rule{Metric: DeliveryP99, Group: "fast", Op: "<=", Limit: AtThreshold,
					And: []report.Rule{{Metric: "silent_streams", Group: "fast", Op: "<=", Limit: 0}}}},
			{Name: "server-memory", Default: "64", Means: "server RSS growth in MiB at most", Scale: 1 << 20,
				Rule: &report.Rule{Metric: "server_rss_bytes_peak", Minus: []report.Term{{Metric: "server_rss_bytes_baseline"}},
					Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceServer}}},
		},
		ServerArgs: []string{"--tick", "200ms"},
		// With a publish endpoint the normal clients' latency is publish-to-delivery of
		// the harness's marks (on a hub the only events), else the events' send time.
		Publish: true,
		Load: []Phase{
			{Group: "slow", Streams: 10, NoReconnect: true, ReadRate: slowRate, Until: UntilEvents, Events: 1,
				Describe: fmt.Sprintf("clients reading at %d B/s while %d x 32 KiB progress events are pushed to each", slowRate, slowPosts)},
			{Group: "fast", Streams: 20, NoReconnect: true, Until: UntilEvents, Events: 1, Describe: "normal clients"},
		},
		Hold: 6 * time.Second,
		hook: fillSlowReaders,
	}
}

const (
	slowRate  = 256 // bytes per second a slow client reads
	slowPosts = 5   // progress events of 32 KiB pushed to each slow client
)

// fillSlowReaders is slow-consumer's hook: each slow client's progress callback pushes
// slowPosts large events, which pile up in the server for it.
func fillSlowReaders(ctx context.Context, h *Harness, opened Opened) error {
	if !h.HasCallback() {
		h.Note("no progress callback: the slow clients fall behind only on the target's own events")
		return nil
	}
	filler := strings.Repeat("y", 32<<10)
	for _, s := range opened.Phases[0] {
		for p := 1; p <= slowPosts; p++ {
			if err := h.PostProgress(ctx, h.Session("", s.Stream()), p, filler); err != nil {
				return err
			}
		}
	}
	return nil
}
