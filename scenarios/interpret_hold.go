package scenarios

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// The interpreter of a ramped phase and its Held checks (declare_hold.go): openRamped
// starts the load engine and waits out the ramp, holdLoad holds it through the window
// and measures what it cost, judgeHeld judges each Held check over what the window
// counted per stream.

// rampedLoad is a ramped phase while it runs: its load and plan, its window and the
// watch its Held checks read.
type rampedLoad struct {
	ramp          *Ramp
	load          *runner.Load
	plan          runner.Plan
	n, mine       int // the run's streams, this shard's
	holdFor       time.Duration
	window        *Group
	watch         *heldWatch
	runnerRSSBase float64
}

// streams visits this shard's streams of the plan.
func (r *rampedLoad) streams() iter.Seq[int] { return r.plan.ShardStreams() }

// heldWatch keeps, per stream of the plan, what the Held checks need: its events in
// the window, its reconnect waits in it (reconnectWaits) and what holdTargetWatch
// keeps; a few words per stream, none per event. observe runs on the collector
// goroutine, once per record, in O(1) and without allocating (the marks published
// append to a slice bounded by the publish rate).
type heldWatch struct {
	mu       sync.Mutex
	counting bool  // the window is open
	inWindow []int // events of each stream in the window
	target   *holdTargetWatch
	waits    *reconnectWaits
}

func newHeldWatch(n int) *heldWatch {
	return &heldWatch{inWindow: make([]int, n), target: newHoldTargetWatch(n), waits: newReconnectWaits(n)}
}

func (w *heldWatch) observe(r *runner.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.target.observe(r)
	w.waits.observe(r)
	if r.Kind == runner.RecordEvent && w.counting && r.Stream >= 0 && r.Stream < len(w.inWindow) {
		w.inWindow[r.Stream]++
	}
}

// open starts the counting at t, the window's start: every stream is open then, so
// every stream must get the same events from now on.
func (w *heldWatch) open(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counting = true
	w.waits.open(t)
}

// close ends the counting at t, the window's end.
func (w *heldWatch) close(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counting = false
	w.target.end(t)
	w.waits.close(t)
}

// openRamped starts the load engine for ramped phase p and waits out its ramp and
// settle. It returns the running phase and its load in words.
func (h *Harness) openRamped(ctx context.Context, p Phase) (*rampedLoad, string, error) {
	r := p.Ramp
	n := p.Streams // the run's total; the engine picks this shard's streams
	if h.opts.Streams > 0 {
		n = h.opts.Streams
	}
	ramp := h.opts.HoldConfig.Ramp
	if ramp == 0 {
		ramp = time.Duration(n) * time.Second / time.Duration(r.PerSecond)
	}
	rl := &rampedLoad{ramp: r, n: n, holdFor: h.holdFor(), watch: newHeldWatch(n)}
	h.observe(rl.watch.observe)
	rl.window = h.Window(r.Window, 0)
	publishing := false
	if r.Publish {
		var err error
		if publishing, err = h.preparePublish(ramp + r.Settle + rl.holdFor); err != nil {
			return nil, "", err
		}
	}
	rl.runnerRSSBase, _ = selfRSS()
	cfg := runner.Config{
		Target: h.opts.Target, StreamTemplate: h.opts.StreamTemplate, Header: h.opts.Header,
		Streams: n, Ramp: ramp, Hold: rl.holdFor + r.Past, Insecure: h.opts.Insecure,
		SessionPrefix: fmt.Sprintf("%s-%s-%s", h.opts.RunID, h.sc.Name, p.Tag), Shard: h.opts.Shard,
	}
	rl.plan = cfg.Resolved().Plan()
	for range rl.streams() {
		rl.mine++
	}
	h.requested.OpenRate = float64(n) / ramp.Seconds()
	load, err := h.StartLoad(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	rl.load = load
	if publishing {
		h.startPublish(ctx)
	}
	// The window opens once the ramp is done and the last streams had time for their
	// first events.
	if err := Sleep(ctx, ramp+r.Settle); err != nil {
		return nil, "", err
	}
	note := fmt.Sprintf("opened over %s", ramp)
	if p.Describe != "" {
		note = fmt.Sprintf("%s: %d streams, %s", p.Describe, rl.mine, note)
	}
	return rl, note, nil
}

// holdLoad holds the scenario's load for its hold: with a ramped phase, through that
// phase's window, and then, before the load stops, what it cost (Ramp.Costs).
func (h *Harness) holdLoad(ctx context.Context, opened Opened) error {
	rl := opened.ramped
	if rl == nil {
		return Sleep(ctx, h.holdFor())
	}
	rl.watch.open(time.Now())
	rl.window.Open()
	if err := Sleep(ctx, rl.holdFor); err != nil {
		return err
	}
	rl.watch.close(time.Now())
	rl.window.Close()
	if rl.ramp.Costs {
		runnerPeak, _ := selfRSS()
		// The same memory after a collection: what the streams hold alive, without the
		// garbage a running Go heap carries between collections.
		runtime.GC()
		debug.FreeOSMemory()
		runnerLive, _ := selfRSS()
		server, _ := h.Scrape(ctx)
		noteHoldMemory(h, server, [3]float64{rl.runnerRSSBase, runnerPeak, runnerLive}, rl.mine, rl.n)
	}
	rl.load.Stop()
	return nil
}

// judgeHeld judges Held check c over what the window of the ramped phase counted, after
// Finish.
func (h *Harness) judgeHeld(c *CheckSpec, rl *rampedLoad) {
	if rl == nil {
		h.notApplicable(c, "the ramped phase did not open")
		return
	}
	w := rl.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	switch c.Held.Kind {
	case HeldEveryEvent:
		judgeEveryEvent(h, c, w.inWindow, w.waits.in, rl.streams(), rl.mine, rl.holdFor)
	case HeldExcessEvents:
		judgeExcessEvents(h, c, w.target, w.inWindow, rl.holdFor, rl.streams())
	case HeldFirstEvent:
		judgeFirstEvent(h, c, w.target, rl.window.agg.Metrics(), h.agg.Metrics(), rl.streams())
	case HeldQuickEnds:
		judgeQuickEnds(h, c, w.target, h.agg.Metrics(), rl.streams())
	case HeldLostIDs:
		if h.markPrefix == "" {
			h.Judge(c, h.deliveryRule(LostIDs, h.limitValue(c)))
			return
		}
		// The marks lost between those received, and those missed at the edges.
		recordEdgeMarks(h, w.target, rl.streams())
		lost, _, _, needs, _ := h.deliveryRules()
		h.Judge(c, report.Rule{Metric: "measure." + edgeMarksMeasure, Plus: []report.Term{{Metric: lost}}, Op: "<=",
			Limit: h.limitValue(c), Needs: needs})
	}
}
