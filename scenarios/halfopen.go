package scenarios

import (
	"context"
	"strings"

	"github.com/sseharness/sseharness/proxy"
)

// half-open: clients vanish without closing. Those that stop reading must be reaped by
// the server's heartbeat and write deadline; those behind a proxy that silently drops
// the traffic (the server's writes keep succeeding) only by its maximum stream lifetime.
// Two stages (Phase.Settles), one after the other, each against the server's open
// streams from just before it: a vanished client cannot tell, only the server can.
func halfOpen() *Scenario {
	reapedStoppedReaders := &CheckSpec{Name: "reaped-stopped-readers", Default: "30s", Embedded: "5s", Means: "clients that stop reading reaped within (heartbeat + write timeout + margin)",
		Settles: &Settle{Metric: OpenStreamsMetric, Missed: "after they stopped reading: the server never noticed clients that stopped reading (no heartbeat or no write deadline)"}}
	reapedBlackholed := &CheckSpec{Name: "reaped-blackholed", Default: "0s", Embedded: "14s", Means: "streams behind a black-holing proxy ended within (max lifetime + margin; 0s: not checked)",
		Settles: &Settle{Metric: OpenStreamsMetric, Missed: "after the proxy went silent: the server keeps streaming into a dead path (no maximum stream lifetime)",
			OffAtZero: "the target's max stream lifetime is unknown: set --threshold half-open/reaped-blackholed=DURATION (its lifetime plus a margin) to check it"}}
	return &Scenario{
		Name:       "half-open",
		Proves:     "the server reaps clients that vanished without closing: by heartbeat and write deadline, or by max stream lifetime behind a black-holing proxy",
		Catches:    []string{"no-heartbeat", "no-lifetime"},
		Checks:     []*CheckSpec{reapedStoppedReaders, reapedBlackholed},
		Needs:      []Capability{NeedMetrics},
		ServerArgs: []string{"--tick", "200ms", "--heartbeat", "1s", "--write-timeout", "2s", "--max-lifetime", "10s"},
		Load: []Phase{
			{Tag: "r", Streams: 10, NoReconnect: true, RecvBuffer: 4096, Until: UntilEvents, Events: 1, Settles: []*CheckSpec{reapedStoppedReaders},
				Describe: "clients that stop reading (4 KiB receive buffer) while progress fillers block the server's writes"},
			{Tag: "b", Streams: 5, NoReconnect: true, Through: &proxy.Config{Listen: "127.0.0.1:0", NoBuffering: true}, Until: UntilEvents, Events: 1,
				Settles: []*CheckSpec{reapedBlackholed}, Describe: "streams behind a proxy that then drops the traffic"},
		},
		hook: vanish,
	}
}

const (
	halfOpenFillers = 4        // progress fillers posted to each stopped reader
	halfOpenFiller  = 48 << 10 // bytes of each
)

// vanish is half-open's hook, run after each stage: the clients of a stage behind a
// proxy vanish in the network (the proxy black-holes their traffic, the server's writes
// keep succeeding); the others stop reading, and large progress messages fill their
// small buffers so the server's writes block at once.
func vanish(ctx context.Context, h *Harness, opened Opened) error {
	stage := len(opened.Phases) - 1
	if px := opened.Proxies[stage]; px != nil {
		px.Blackhole(true)
		return nil
	}
	srcs := opened.Phases[stage]
	for _, s := range srcs {
		s.StopReading()
	}
	if !h.HasCallback() {
		h.Note("no progress callback: the stopped readers' buffers fill only with the target's own events")
		return nil
	}
	filler := strings.Repeat("x", halfOpenFiller)
	for _, s := range srcs {
		for p := 1; p <= halfOpenFillers; p++ {
			if err := h.PostProgress(ctx, h.sessionOfStream(s.Stream()), p, filler); err != nil {
				return err
			}
		}
	}
	return nil
}
