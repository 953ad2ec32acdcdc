package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/runner"
)

// half-open: clients vanish without closing. Those that stop reading must be reaped by
// the server's heartbeat and write deadline; those behind a proxy that silently drops
// the traffic (the server's writes keep succeeding) only by its maximum stream lifetime.
func halfOpen() *Scenario {
	ck := halfOpenChecks{
		reapedStoppedReaders: &CheckSpec{Name: "reaped-stopped-readers", Default: "30s", Embedded: "5s", Means: "clients that stop reading reaped within (heartbeat + write timeout + margin)"},
		reapedBlackholed:     &CheckSpec{Name: "reaped-blackholed", Default: "0s", Embedded: "14s", Means: "streams behind a black-holing proxy ended within (max lifetime + margin; 0s: not checked)"},
	}
	return &Scenario{
		Name:       "half-open",
		Proves:     "the server reaps clients that vanished without closing: by heartbeat and write deadline, or by max stream lifetime behind a black-holing proxy",
		Catches:    []string{"no-heartbeat", "no-lifetime"},
		Checks:     ck.all(),
		Needs:      []Capability{NeedMetrics},
		ServerArgs: []string{"--tick", "200ms", "--heartbeat", "1s", "--write-timeout", "2s", "--max-lifetime", "10s"},
		run:        func(ctx context.Context, h *Harness) error { return runHalfOpen(ctx, h, ck) },
	}
}

// halfOpenChecks are HalfOpen's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type halfOpenChecks struct{ reapedStoppedReaders, reapedBlackholed *CheckSpec }

func (c halfOpenChecks) all() []*CheckSpec {
	return []*CheckSpec{c.reapedStoppedReaders, c.reapedBlackholed}
}

func runHalfOpen(ctx context.Context, h *Harness, ck halfOpenChecks) error {
	metric := h.opts.OpenStreamsMetric
	if _, ok := h.metric(ctx, metric); !ok {
		why := "needs the target's open-streams metric (" + orNone(metric) + " at --metrics-url): a vanished client cannot see whether the server reaped it"
		h.notApplicable(ck.reapedStoppedReaders, why)
		h.notApplicable(ck.reapedBlackholed, why)
		return nil
	}
	n := h.streams(10)
	h.request(n+n/2, 0, 0, "clients that stop reading (small receive buffer), then streams behind a proxy that drops the traffic")
	if err := halfOpenStopReading(ctx, h, ck, n); err != nil {
		return err
	}
	return halfOpenBlackhole(ctx, h, ck, max(1, n/2))
}

// halfOpenStopReading: the clients stop reading with a small receive buffer, and large
// progress messages fill the buffers so the server's writes block at once.
func halfOpenStopReading(ctx context.Context, h *Harness, ck halfOpenChecks, n int) error {
	metric := h.opts.OpenStreamsMetric
	base, _ := h.metric(ctx, metric)
	srcs, err := h.OpenSessions(ctx, "r", n, func(c *runner.SourceConfig) {
		c.NoReconnect = true
		c.RecvBuffer = 4096
	})
	if err != nil {
		return err
	}
	if _, err := h.AwaitStarted(ctx, srcs, 1); err != nil {
		return err
	}
	for _, s := range srcs {
		s.StopReading()
	}
	if h.HasCallback() {
		filler := strings.Repeat("x", 48<<10)
		for i := range n {
			for p := 1; p <= 4; p++ {
				if err := h.PostProgress(ctx, h.Session("r", i), p, filler); err != nil {
					return err
				}
			}
		}
	} else {
		h.Note("no progress callback: the stopped readers' buffers fill only with the target's own events")
	}
	within := h.dur(ck.reapedStoppedReaders)
	var last float64
	took, held, _ := h.AwaitMetric(ctx, metric, within, func(v float64) bool { last = v; return v <= base })
	if held {
		h.excess(ck.reapedStoppedReaders, 0, fmt.Sprintf("all %d reaped after %s (%s back to %.0f)", n, ms(took), metric, base))
	} else {
		h.excess(ck.reapedStoppedReaders, max(last-base, 1), fmt.Sprintf("%.0f of %d still open %s after they stopped reading: the server never noticed clients that stopped reading (no heartbeat or no write deadline)", last-base, n, within))
	}
	for _, s := range srcs {
		s.Reset()
	}
	// Start the next half from a clean baseline: the reset streams must be gone.
	h.AwaitMetric(ctx, metric, 10*time.Second, func(v float64) bool { return v <= base })
	return nil
}

// halfOpenBlackhole: a proxy keeps accepting the server's bytes and forwards nothing;
// the server's writes succeed, so only its maximum stream lifetime can end the stream.
func halfOpenBlackhole(ctx context.Context, h *Harness, ck halfOpenChecks, n int) error {
	within := h.dur(ck.reapedBlackholed)
	if within == 0 {
		h.notApplicable(ck.reapedBlackholed, "the target's max stream lifetime is unknown: set --threshold half-open/reaped-blackholed=DURATION (its lifetime plus a margin) to check it")
		return nil
	}
	metric := h.opts.OpenStreamsMetric
	base, _ := h.metric(ctx, metric)
	px, err := proxy.Start(ctx, proxy.Config{Listen: "127.0.0.1:0", Upstream: h.opts.Target, NoBuffering: true, InsecureUpstream: h.opts.Insecure})
	if err != nil {
		return fmt.Errorf("start the black-holing proxy: %w", err)
	}
	defer px.Close()
	srcs := make([]*runner.EventSource, n)
	for i := range n {
		sess := h.Session("b", i)
		es, err := h.Open(ctx, h.newBrowser(false), 1000+i, sess, h.streamURLVia(px.URL(), sess), func(c *runner.SourceConfig) { c.NoReconnect = true })
		if err != nil {
			return err
		}
		srcs[i] = es
	}
	if _, err := h.AwaitStarted(ctx, srcs, 1); err != nil {
		return err
	}
	px.Blackhole(true)
	var last float64
	took, held, _ := h.AwaitMetric(ctx, metric, within, func(v float64) bool { last = v; return v <= base })
	if held {
		h.excess(ck.reapedBlackholed, 0, fmt.Sprintf("all %d ended after %s (%d bytes dropped by the proxy)", n, ms(took), px.Stats().Discarded))
	} else {
		h.excess(ck.reapedBlackholed, max(last-base, 1), fmt.Sprintf("%.0f of %d still open %s after the proxy went silent: the server keeps streaming into a dead path (no maximum stream lifetime)", last-base, n, within))
	}
	return nil
}
