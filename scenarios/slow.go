package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// slow-consumer: a share of the clients read at a trickle while large events pile up for
// them. The others must not suffer, and the server's memory must stay bounded.
func slowConsumer() *Scenario {
	ck := slowChecks{
		fastP99:      &CheckSpec{Name: "fast-p99", Default: "500ms", Means: "p99 delivery latency of the normal clients at most"},
		serverMemory: &CheckSpec{Name: "server-memory", Default: "64", Means: "server RSS growth in MiB at most"},
	}
	return &Scenario{
		Name:       "slow-consumer",
		Proves:     "clients reading at a trickle do not slow the others down nor grow the server's memory without bound",
		Checks:     ck.all(),
		ServerArgs: []string{"--tick", "200ms"},
		run:        func(ctx context.Context, h *Harness) error { return runSlow(ctx, h, ck) },
	}
}

// slowChecks are Slow's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type slowChecks struct{ fastP99, serverMemory *CheckSpec }

func (c slowChecks) all() []*CheckSpec { return []*CheckSpec{c.fastP99, c.serverMemory} }

func runSlow(ctx context.Context, h *Harness, ck slowChecks) error {
	n := h.Streams(30)
	slowN := max(1, n/3)
	hold := 6 * time.Second
	if h.opts.Hold > 0 {
		hold = h.opts.Hold
	}
	const rate = 256 // bytes per second
	h.Request(n, n, hold, fmt.Sprintf("%d of %d clients read at %d B/s while 5 x 32 KiB progress events are pushed to each of them", slowN, n, rate))

	// With a publish endpoint the normal clients' latency is publish-to-delivery of the
	// harness's marks, else the events' send time.
	publishing, err := h.PreparePublish(hold + 15*time.Second)
	if err != nil {
		return err
	}
	latencyMetric, latencyNeeds := "latency_p99", []report.Evidence{report.EvidenceEvent}
	if publishing {
		latencyMetric, latencyNeeds = "mark_latency_p99", []report.Evidence{report.EvidenceMarks}
	}
	slowGrp, fastGrp := h.StreamGroup("slow", slowN), h.StreamGroup("fast", n-slowN)
	srcs := make([]*runner.EventSource, n)
	for i := range n {
		slow := i < slowN
		if slow {
			h.Join(slowGrp, i)
		} else {
			h.Join(fastGrp, i)
		}
		es, err := h.OpenSession(ctx, i, h.Session("", i), func(c *runner.SourceConfig) {
			c.NoReconnect = true
			if slow {
				c.ReadRate = rate
			}
		})
		if err != nil {
			return err
		}
		srcs[i] = es
	}
	if publishing {
		h.StartPublish(ctx) // before the wait: on a hub the marks are the only events
	}
	if _, err := h.AwaitStarted(ctx, srcs, 1); err != nil {
		return err
	}
	if h.HasCallback() {
		filler := strings.Repeat("y", 32<<10)
		for i := range slowN {
			for p := 1; p <= 5; p++ {
				if err := h.PostProgress(ctx, h.Session("", i), p, filler); err != nil {
					return err
				}
			}
		}
	} else {
		h.Note("no progress callback: the slow clients fall behind only on the target's own events")
	}
	if err := Sleep(ctx, hold); err != nil {
		return err
	}
	h.Finish()
	if note := h.latencyNote(); publishing && note != "" {
		h.Note("%s", note)
	}

	// The normal clients' delivery from their group's aggregate; every one of them must
	// get events. The server's growth from its scraped figures.
	h.Judge(ck.fastP99, report.Rule{Metric: latencyMetric, Group: "fast", Op: "<=", Limit: h.LimitValue(ck.fastP99),
		Needs: latencyNeeds,
		And:   []report.Rule{{Metric: "silent_streams", Group: "fast", Op: "<=", Limit: 0}}})
	h.Judge(ck.serverMemory, report.Rule{Metric: "server_rss_bytes_peak", Minus: []report.Term{{Metric: "server_rss_bytes_baseline"}},
		Op: "<=", Limit: h.LimitValue(ck.serverMemory) * (1 << 20), Needs: []report.Evidence{report.EvidenceServer}})
	return nil
}
