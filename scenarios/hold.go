package scenarios

import (
	"context"
	"fmt"
	"iter"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// hold: the plain soak. N streams open over the ramp and stay for the hold; every
// stream must get every event. This is the scale run (10,000 streams) and what it costs
// per stream on both sides.
func hold() *Scenario {
	ck := holdChecks{
		streamsOpened:  &CheckSpec{Name: "streams-opened", Default: "0", Means: "streams that never opened (status 200, text/event-stream), at most"},
		errors:         &CheckSpec{Name: "errors", Default: "0", Means: "errors, at most"},
		noMissingIds:   &CheckSpec{Name: "no-missing-ids", Default: "0", Means: "ids lost, at most"},
		noDuplicateIds: &CheckSpec{Name: "no-duplicate-ids", Default: "0", Means: "ids repeated, at most"},
		everyEvent:     &CheckSpec{Name: "every-event", Default: "2", Means: "events a stream may lag behind the median stream, at most, besides those it waited through reconnecting as the server asked (its retry); a stream with none fails"},
		noAbruptEnd:    &CheckSpec{Name: "no-abrupt-end", Default: "0", Means: "streams cut by a network error (reset, unexpected EOF, body without its end) while held, at most; a clean end and a resume is fine"},
		holdTargetChecks: holdTargetChecks{
			excessEvents:    &CheckSpec{Name: "excess-events", Default: "1.5", Means: "events a stream got per event the target produced while it was open (the marks published, or the target's own rate in the hold window), at most"},
			firstEvent:      &CheckSpec{Name: "first-event", Default: "5s", Means: "time from a stream's request to its first event, at most (or 3 times the target's median gap between events when that is longer)"},
			batching:        &CheckSpec{Name: "batching", Default: "0.5", Means: "share of the hold window's events that arrived within 5ms of the previous one of their stream (in bursts), at most"},
			deliveryLatency: &CheckSpec{Name: "delivery-latency", Default: "1s", Means: "p99 delivery latency (from the events' send time, or publish to delivery of the harness's marks), at most"},
			quickEnds:       &CheckSpec{Name: "quick-ends", Default: "1", Means: "attempts in a row a stream may see end within a second of opening, at most"},
		},
	}
	return &Scenario{
		Name:    "hold",
		Proves:  "N streams held open all get every event and none is cut mid-stream, with their lifetimes and the memory each costs the runner and the server",
		Catches: []string{"cut-after=D"},
		Checks:  ck.all(),
		run:     func(ctx context.Context, h *Harness) error { return runHold(ctx, h, ck) },
	}
}

// holdChecks are Hold's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type holdChecks struct {
	streamsOpened, errors, noMissingIds, noDuplicateIds, everyEvent *CheckSpec
	holdTargetChecks
	noAbruptEnd *CheckSpec
}

func (c holdChecks) all() []*CheckSpec {
	return append([]*CheckSpec{c.streamsOpened, c.errors, c.noMissingIds, c.noDuplicateIds, c.everyEvent, c.noAbruptEnd}, c.holdTargetChecks.all()...)
}

// runHold is hold's run (until hold becomes a declaration): its settings, the observer,
// the ramp, the counting window and the measurements at its end, in the order they
// happen, in one function of about 90 lines because that order is the point; what it
// judges is in judgeHoldRules, judgeEveryEvent and judgeHoldTarget.
func runHold(ctx context.Context, h *Harness, ck holdChecks) error {
	n := 100 // the run's total; the runner picks this shard's streams
	if h.opts.Streams > 0 {
		n = h.opts.Streams
	}
	holdFor := 10 * time.Second
	if h.opts.Hold > 0 {
		holdFor = h.opts.Hold
	}
	ramp := h.opts.HoldConfig.Ramp
	if ramp == 0 {
		ramp = time.Duration(n) * time.Millisecond // 1,000 streams per second
	}

	var mu sync.Mutex
	perStream := make([]int, n)
	// Count events only in the hold window: every stream is open then, so every stream
	// must have got the same ticks.
	counting := false
	tw := newHoldTargetWatch(n)
	waits := newReconnectWaits(n)
	h.observe(func(r runner.Record) {
		mu.Lock()
		defer mu.Unlock()
		tw.observe(r)
		waits.observe(r)
		if r.Kind != runner.RecordEvent {
			return
		}
		if counting && r.Stream >= 0 && r.Stream < n {
			perStream[r.Stream]++
		}
	})
	window := h.Window("hold-window", 0)
	publishing, err := h.preparePublish(ramp + time.Second + holdFor)
	if err != nil {
		return err
	}
	runnerBase, _ := selfRSS()
	cfg := runner.Config{
		Target: h.opts.Target, StreamTemplate: h.opts.StreamTemplate, Header: h.opts.Header,
		Streams: n, Ramp: ramp, Hold: holdFor + 2*time.Second, Insecure: h.opts.Insecure,
		SessionPrefix: fmt.Sprintf("%s-hold-", h.opts.RunID), Shard: h.opts.Shard,
	}
	mine := 0
	for range cfg.Resolved().Plan().ShardStreams() {
		mine++
	}
	h.request(mine, mine, holdFor, fmt.Sprintf("opened over %s, held %s", ramp, holdFor))
	h.requested.OpenRate = float64(n) / ramp.Seconds()
	load, err := h.StartLoad(ctx, cfg)
	if err != nil {
		return err
	}
	if publishing {
		h.startPublish(ctx)
	}
	// The counting window starts once the ramp is done (and a second for the last
	// streams' first events) and lasts the hold.
	if err := Sleep(ctx, ramp+time.Second); err != nil {
		return err
	}
	mu.Lock()
	counting = true
	waits.open(time.Now())
	mu.Unlock()
	window.Open()
	if err := Sleep(ctx, holdFor); err != nil {
		return err
	}
	mu.Lock()
	counting = false
	tw.end(time.Now())
	waits.close(time.Now())
	mu.Unlock()
	window.Close()
	runnerPeak, _ := selfRSS()
	// The same memory after a collection: what the streams hold alive, without the
	// garbage a running Go heap carries between collections.
	runtime.GC()
	debug.FreeOSMemory()
	runnerLive, _ := selfRSS()
	server, _ := h.Scrape(ctx)
	load.Stop()
	h.Finish()

	judgeHoldRules(h, ck)

	mu.Lock()
	judgeEveryEvent(h, ck.everyEvent, perStream, waits.in, cfg.Resolved().Plan().ShardStreams(), mine, holdFor)
	judgeHoldTarget(h, ck.holdTargetChecks, tw, perStream, holdFor, window, cfg.Resolved().Plan().ShardStreams())
	mu.Unlock()

	noteHoldMemory(h, server, [3]float64{runnerBase, runnerPeak, runnerLive}, mine, n)
	return nil
}

// judgeHoldRules judges hold's rules over the aggregate, each on the evidence it needs,
// so merged shards are judged exactly and nothing passes on no data.
func judgeHoldRules(h *Harness, ck holdChecks) {
	h.checkRule(ck.streamsOpened, "unopened_streams", "<=")
	h.checkRule(ck.errors, "errors", "<=", report.EvidenceHead)
	lost, dup, _, lostNeeds, dupNeeds := h.deliveryRules()
	if h.markPrefix != "" { // the marks lost between those received, and at the edges
		h.Judge(ck.noMissingIds, report.Rule{Metric: "measure." + edgeMarksMeasure, Plus: []report.Term{{Metric: lost}}, Op: "<=",
			Limit: h.limitValue(ck.noMissingIds), Needs: lostNeeds})
	} else {
		h.checkRule(ck.noMissingIds, lost, "<=", lostNeeds...)
	}
	h.checkRule(ck.noDuplicateIds, dup, "<=", dupNeeds...)
	// Attempts that opened and then ended by a network error: a server timeout cutting
	// streams. A clean end (the server's declared lifetime) and a resume is not one;
	// the lifetimes' distribution is in the result's durations.
	h.checkRule(ck.noAbruptEnd, "abrupt_ends", "<=", report.EvidenceOpened)
}

// judgeEveryEvent judges c: every stream of this shard (streams) got about the median
// number of events in the hold window (perStream), less those it was told to wait
// through (waited: its reconnect waits in the window, at the median stream's rate).
func judgeEveryEvent(h *Harness, c *CheckSpec, perStream []int, waited []time.Duration, streams iter.Seq[int], mine int, holdFor time.Duration) {
	// Events per stream in the window: the median from report's histogram (nearest
	// rank, within its 1%), not statistics of the scenario's own.
	dist := report.NewHistogram()
	for i := range streams {
		dist.Add(float64(perStream[i]))
	}
	medianF, _ := dist.Percentile(50)
	median := int(math.Round(medianF))
	rate := float64(median) / holdFor.Seconds()
	behind, excused := 0, 0
	for i := range streams {
		// A stream without a single event while others got some is starved, however
		// short the window (the tolerance is for ticks at the window's edges); with no
		// event anywhere, every stream is.
		credit := math.Ceil(rate * waited[i].Seconds())
		lag := float64(median - perStream[i])
		switch {
		case lag > h.num(c)+credit || perStream[i] == 0:
			behind++
		case lag > h.num(c):
			excused++
		}
	}
	measured := fmt.Sprintf("%d of %d streams behind the median of %d events in the %s window (min %.0f)", behind, mine, median, holdFor, dist.Min())
	if excused > 0 {
		measured += fmt.Sprintf("; %d more short only by the events of their reconnect waits (the server's retry), which their resume brings after the window", excused)
	}
	if dist.Max() == 0 {
		measured = fmt.Sprintf("no stream got an event in the %s window (%d of %d streams opened)", holdFor, h.agg.Metrics().Streams, mine)
	}
	h.offenders(c, behind, mine, measured)
}

// noteHoldMemory notes what a stream costs the runner (rss: its RSS before the load, at
// the end of the hold and after a GC) and the server (its figures against the baseline).
func noteHoldMemory(h *Harness, server probe.Sample, rss [3]float64, mine, n int) {
	runnerBase, runnerPeak, runnerLive := rss[0], rss[1], rss[2]
	runnerPer := (runnerPeak - runnerBase) / float64(mine) / 1024
	note := fmt.Sprintf("runner %.1f KB RSS per stream (%.1f KB after a GC)", runnerPer, (runnerLive-runnerBase)/float64(mine)/1024)
	if b, ok := h.baseline.Value(probe.MetricRSS); ok {
		if v, ok := server.Value(probe.MetricRSS); ok {
			note += fmt.Sprintf(", server %.1f KB RSS per stream", (v-b)/float64(n)/1024)
		}
	}
	if b, ok := h.baseline.Value(probe.MetricGoroutines); ok {
		if v, ok := server.Value(probe.MetricGoroutines); ok {
			note += fmt.Sprintf(", %.2f server goroutines per stream", (v-b)/float64(n))
		}
	}
	h.Note("%s", note)
}
