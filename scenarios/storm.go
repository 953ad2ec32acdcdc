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
	ck := stormChecks{
		reconnected:    &CheckSpec{Name: "reconnected", Default: "2s", Means: "every client open again within its retry plus"},
		noLostIds:      &CheckSpec{Name: "no-lost-ids", Default: "0", Means: "ids missing after the resume"},
		noDuplicateIds: &CheckSpec{Name: "no-duplicate-ids", Default: "0", Means: "ids repeated after the resume"},
	}
	return &Scenario{
		Name:       "reconnect-storm",
		Proves:     "after every stream is cut at once, all clients are back within retry plus a margin, with no id lost or repeated",
		Catches:    []string{"no-replay"},
		Checks:     ck.all(),
		ServerArgs: []string{"--retry", "1s", "--tick", "200ms"},
		run:        func(ctx context.Context, h *Harness) error { return runStorm(ctx, h, ck) },
	}
}

// stormChecks are Storm's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type stormChecks struct{ reconnected, noLostIds, noDuplicateIds *CheckSpec }

func (c stormChecks) all() []*CheckSpec {
	return []*CheckSpec{c.reconnected, c.noLostIds, c.noDuplicateIds}
}

func runStorm(ctx context.Context, h *Harness, ck stormChecks) error {
	n := h.Streams(60)
	px, err := proxy.Start(ctx, proxy.Config{Listen: "127.0.0.1:0", Upstream: h.opts.Target, NoBuffering: true, InsecureUpstream: h.opts.Insecure})
	if err != nil {
		return fmt.Errorf("start the cutting proxy: %w", err)
	}
	defer px.Close()
	h.Request(n, n, 0, "every stream through a pass-through proxy that cuts all connections at once")

	// The reconnections after the cut: a window whose aggregate has the reconnect
	// delays and the reopened attempts.
	after := h.Window("after-cut", n)
	// The longest reconnection time a server's retry field set (one value, not one per
	// stream); streams without one wait the default.
	var retryMu sync.Mutex
	var longestRetry time.Duration
	h.Observe(func(r runner.Record) {
		if r.Kind == runner.RecordRetry {
			retryMu.Lock()
			longestRetry = max(longestRetry, r.Retry)
			retryMu.Unlock()
		}
	})
	publishing, err := h.PreparePublish(2*startTimeout + runner.DefaultRetry + h.Dur(ck.reconnected))
	if err != nil {
		return err
	}
	srcs := make([]*runner.EventSource, n)
	for i := range n {
		sess := h.Session("", i)
		es, err := h.Open(ctx, h.NewBrowser(false), i, sess, h.StreamURLVia(px.URL(), sess), nil)
		if err != nil {
			return err
		}
		srcs[i] = es
	}
	if publishing {
		h.StartPublish(ctx)
	}
	if _, err := h.AwaitStarted(ctx, srcs, 2); err != nil {
		return err
	}
	before := make([]int64, n)
	for i, s := range srcs {
		before[i] = s.Events()
	}
	retryMu.Lock()
	maxRetry := longestRetry
	retryMu.Unlock()
	if h.agg.Metrics().RetryFields < int64(n) {
		maxRetry = max(maxRetry, runner.DefaultRetry) // some stream got no retry field
	}
	after.Open()
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
	margin := h.Dur(ck.reconnected)
	notBack := WaitAll(ctx, srcs, maxRetry+margin, func(ctx context.Context, s *runner.EventSource) error {
		if err := s.WaitOpens(ctx, 2); err != nil {
			return err
		}
		return s.WaitEvents(ctx, before[s.Stream()]+2)
	})
	h.Finish()

	am := after.agg.Metrics()
	h.Offenders(ck.reconnected, len(notBack), n,
		fmt.Sprintf("%d of %d clients back within retry (%s) + %s; %d reopened, slowest reconnect delay %s", n-len(notBack), n, maxRetry, margin, am.Opens, ms(time.Duration(am.ReconnectDelay.MaxMS*float64(time.Millisecond)))))
	lost, dup, _, lostNeeds, dupNeeds := h.deliveryRules()
	h.CheckRule(ck.noLostIds, lost, "<=", lostNeeds...)
	h.CheckRule(ck.noDuplicateIds, dup, "<=", dupNeeds...)
	return nil
}
