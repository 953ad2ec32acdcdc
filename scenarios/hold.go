package scenarios

import (
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/report"
)

// hold: the plain soak. N streams open over the ramp and stay for the hold; every
// stream must get every event. This is the scale run (10,000 streams and more): its one
// phase is the load engine's (Phase.Ramp), which keeps a few words per stream and no
// EventSource, and what a stream costs on both sides is noted at the end of the hold.
func hold() *Scenario {
	return &Scenario{
		Name:    "hold",
		Proves:  "N streams held open all get every event and none is cut mid-stream, with their lifetimes and the memory each costs the runner and the server",
		Catches: []string{"cut-after=D"},
		// The aggregate's rules (over the run, or over the hold window) and the Held
		// counts over each stream's events in the window; the window opens after the
		// ramp and a second for the last streams' first events, and lasts the hold.
		Checks: []*CheckSpec{
			{Name: "streams-opened", Default: "0", Means: "streams that never opened (status 200, text/event-stream), at most",
				Rule: &report.Rule{Metric: "unopened_streams", Op: "<=", Limit: AtThreshold}},
			{Name: "errors", Default: "0", Means: "errors, at most",
				Rule: &report.Rule{Metric: "errors", Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceHead}}},
			{Name: "no-missing-ids", Default: "0", Means: "ids lost, at most", Held: &Held{Kind: HeldLostIDs}},
			{Name: "no-duplicate-ids", Default: "0", Means: "ids repeated, at most", Delivery: DuplicateIDs},
			{Name: "every-event", Default: "2", Means: "events a stream may lag behind the median stream, at most, besides those it waited through reconnecting as the server asked (its retry); a stream with none fails",
				Held: &Held{Kind: HeldEveryEvent}},
			// Attempts that opened and then ended by a network error: a server timeout
			// cutting streams. A clean end (the server's declared lifetime) and a resume
			// is not one; the lifetimes' distribution is in the result's durations.
			{Name: "no-abrupt-end", Default: "0", Means: "streams cut by a network error (reset, unexpected EOF, body without its end) while held, at most; a clean end and a resume is fine",
				Rule: &report.Rule{Metric: "abrupt_ends", Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceOpened}}},
			// What a target outside our control does (issue 11): events beyond what it
			// produced, a held head or first event, batching, delivery latency, streams
			// that keep ending at once.
			{Name: "excess-events", Default: "1.5", Means: "events a stream got per event the target produced while it was open (the marks published, or the target's own rate in the hold window), at most",
				Held: &Held{Kind: HeldExcessEvents}},
			{Name: "first-event", Default: "5s", Means: "time from a stream's request to its first event, at most (or 3 times the target's median gap between events when that is longer)",
				Held: &Held{Kind: HeldFirstEvent}},
			{Name: "batching", Default: "0.5", Means: "share of the hold window's events that arrived within 5ms of the previous one of their stream (in bursts), at most",
				Rule: &report.Rule{Metric: "batched_share", Group: holdWindow, Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceEvent}}},
			// From the harness's marks when it publishes, else from the events' send time.
			{Name: "delivery-latency", Default: "1s", Means: "p99 delivery latency (from the events' send time, or publish to delivery of the harness's marks), at most",
				Rule: &report.Rule{Metric: DeliveryP99, Group: holdWindow, Op: "<=", Limit: AtThreshold}},
			{Name: "quick-ends", Default: "1", Means: "attempts in a row a stream may see end within a second of opening, at most",
				Held: &Held{Kind: HeldQuickEnds}},
		},
		Load: []Phase{{Streams: 100, Until: Unawaited,
			Ramp: &Ramp{PerSecond: 1000, Settle: time.Second, Past: 2 * time.Second, Window: holdWindow, Publish: true, Costs: true}}},
		Hold: 10 * time.Second,
	}
}

// holdWindow is the name of hold's window over the hold, in the result and its rules.
const holdWindow = "hold-window"

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
