package scenarios

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// slow-consumer: a share of the clients read at a trickle while large events pile up for
// them. The others must not suffer, and the server's memory must stay bounded.
func slowConsumer() *Scenario {
	return &Scenario{
		Name:   "slow-consumer",
		Proves: "clients reading at a trickle do not slow the others down nor grow the server's memory without bound",
		Checks: []CheckSpec{
			{Name: "fast-p99", Default: "500ms", Means: "p99 delivery latency of the normal clients at most"},
			{Name: "server-memory", Default: "64", Means: "server RSS growth in MiB at most"},
		},
		ServerArgs: []string{"--tick", "200ms"},
		run:        runSlow,
	}
}

func runSlow(ctx context.Context, h *Harness) error {
	n := h.Streams(30)
	slowN := max(1, n/3)
	hold := 6 * time.Second
	if h.opts.Hold > 0 {
		hold = h.opts.Hold
	}
	const rate = 256 // bytes per second
	h.Request(n, n, hold, fmt.Sprintf("%d of %d clients read at %d B/s while 5 x 32 KiB progress events are pushed to each of them", slowN, n, rate))

	var mu sync.Mutex
	var fast []time.Duration
	h.Observe(func(r runner.Record) {
		if r.Kind == runner.RecordEvent && r.Stream >= slowN && r.Latency >= 0 {
			mu.Lock()
			fast = append(fast, r.Latency)
			mu.Unlock()
		}
	})
	srcs := make([]*runner.EventSource, n)
	for i := range n {
		slow := i < slowN
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
	peak := h.samples()
	h.Finish()

	p99, ok := percentile(fast, 0.99)
	if !ok {
		h.Check("fast-p99", false, "the normal clients got no timed event", "")
	} else {
		h.Check("fast-p99", p99 <= h.Dur("fast-p99"), fmt.Sprintf("p99 %s over %d events of %d normal clients", ms(p99), len(fast), n-slowN), "")
	}
	base, bok := h.baseline.Value(runner.MetricRSS)
	top, tok := runner.Peak(peak, runner.MetricRSS)
	if !bok || !tok {
		h.NA("server-memory", "needs the target's process_resident_memory_bytes (--metrics-url)")
		return nil
	}
	growth := (top - base) / (1 << 20)
	h.Check("server-memory", growth <= h.Num("server-memory"), fmt.Sprintf("RSS %.1f MiB -> peak %.1f MiB (+%.1f MiB)", base/(1<<20), top/(1<<20), growth), "")
	return nil
}
