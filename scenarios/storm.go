package scenarios

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/runner"
)

// reconnect-storm: every stream is cut at once (a proxy restart). All clients come back
// after the reconnection time, resume, and lose nothing.
func reconnectStorm() *Scenario {
	return &Scenario{
		Name:    "reconnect-storm",
		Proves:  "after every stream is cut at once, all clients are back within retry plus a margin, with no id lost or repeated",
		Catches: []string{"no-replay"},
		Checks: []CheckSpec{
			{Name: "reconnected", Default: "2s", Means: "every client open again within its retry plus"},
			{Name: "no-lost-ids", Default: "0", Means: "ids missing after the resume"},
			{Name: "no-duplicate-ids", Default: "0", Means: "ids repeated after the resume"},
		},
		ServerArgs: []string{"--retry", "1s", "--tick", "200ms"},
		run:        runStorm,
	}
}

func runStorm(ctx context.Context, h *Harness) error {
	n := h.Streams(60)
	px, err := proxy.Start(ctx, proxy.Config{Listen: "127.0.0.1:0", Upstream: h.opts.Target, NoBuffering: true, InsecureUpstream: h.opts.Insecure})
	if err != nil {
		return fmt.Errorf("start the cutting proxy: %w", err)
	}
	defer px.Close()
	h.Request(n, n, 0, "every stream through a pass-through proxy that cuts all connections at once")

	var mu sync.Mutex
	retry := map[int]time.Duration{}
	cutAt := time.Time{}
	reopenDelay := map[int]time.Duration{}
	missing, dups := int64(0), 0
	h.Observe(func(r runner.Record) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Kind {
		case runner.RecordRetry:
			retry[r.Stream] = r.Retry
		case runner.RecordHeaders:
			if !cutAt.IsZero() && r.Attempt > 0 && r.Status == 200 {
				if _, seen := reopenDelay[r.Stream]; !seen {
					reopenDelay[r.Stream] = r.Time.Sub(cutAt)
				}
			}
		case runner.RecordEvent:
			missing += r.Missing
			if r.OutOfOrder {
				missing-- // a late event fills a gap counted as missing before
			}
			if r.Duplicate {
				dups++
			}
		}
	})
	srcs := make([]*runner.EventSource, n)
	for i := range n {
		sess := h.Session("", i)
		es, err := h.Open(ctx, h.NewBrowser(false), i, sess, h.StreamURLVia(px.URL(), sess), nil)
		if err != nil {
			return err
		}
		srcs[i] = es
	}
	if _, err := h.AwaitStarted(ctx, srcs, 2); err != nil {
		return err
	}
	before := make([]int64, n)
	for i, s := range srcs {
		before[i] = s.Events()
	}
	mu.Lock()
	cutAt = time.Now()
	maxRetry := time.Duration(0)
	for i := range n {
		r, ok := retry[i]
		if !ok {
			r = runner.DefaultRetry
		}
		maxRetry = max(maxRetry, r)
	}
	mu.Unlock()
	px.CutAll()
	// Events keep being produced while the clients wait to reconnect: each must arrive
	// once after the resume.
	if h.HasCallback() {
		for i := range n {
			if err := h.PostProgress(ctx, h.Session("", i), 10, "during the storm"); err != nil {
				return err
			}
		}
	} else {
		h.Note("no progress callback: only events the target produces by itself are checked across the cut")
	}
	margin := h.Dur("reconnected")
	notBack := WaitAll(ctx, srcs, maxRetry+margin, func(ctx context.Context, s *runner.EventSource) error {
		if err := s.WaitOpens(ctx, 2); err != nil {
			return err
		}
		return s.WaitEvents(ctx, before[s.Stream()]+2)
	})
	h.Finish()

	late := 0
	var worst time.Duration
	for i := range n {
		d, ok := reopenDelay[i]
		r, rok := retry[i]
		if !rok {
			r = runner.DefaultRetry
		}
		if !ok || d > r+margin {
			late++
		}
		worst = max(worst, d)
	}
	h.Check("reconnected", late == 0 && len(notBack) == 0,
		fmt.Sprintf("%d of %d clients not back within retry (%s) + %s; slowest reopen %s after the cut", max(late, len(notBack)), n, maxRetry, margin, ms(worst)), "")
	h.Check("no-lost-ids", float64(missing) <= h.Num("no-lost-ids"), fmt.Sprintf("%d ids missing", missing), "")
	h.Check("no-duplicate-ids", float64(dups) <= h.Num("no-duplicate-ids"), fmt.Sprintf("%d ids repeated", dups), "")
	return nil
}
