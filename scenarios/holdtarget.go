package scenarios

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// hold's Held checks of what a target outside our control does (issue 11): events
// beyond what it produced, a held head or first event, streams that keep ending at
// once, marks missed at the edges.

// holdTargetWatch keeps what those checks need per stream (a few words each, bounded
// by the stream count) and the times of the marks published (bounded by the publish
// rate times its duration). It is fed on the collector goroutine under its heldWatch's
// lock.
type holdTargetWatch struct {
	openAt     []time.Time     // the stream's first accepted head
	total      []int           // events until the end of the hold window
	firstEvent []time.Duration // request -> first event of the stream; 0 before one
	quick      []int           // most attempts in a row that ended within a second
	published  []time.Time     // marks published with a 2xx answer, in order
	pubSeq     []int64         // their sequence numbers
	minMark    []int64         // lowest and highest mark each stream received; -1 before one
	maxMark    []int64
	ended      bool
	endAt      time.Time
}

func newHoldTargetWatch(n int) *holdTargetWatch {
	w := &holdTargetWatch{openAt: make([]time.Time, n), total: make([]int, n), firstEvent: make([]time.Duration, n), quick: make([]int, n),
		minMark: make([]int64, n), maxMark: make([]int64, n)}
	for i := range n {
		w.minMark[i], w.maxMark[i] = -1, -1
	}
	return w
}

func (w *holdTargetWatch) observe(r *runner.Record) {
	if r.Kind == runner.RecordPublish {
		if !w.ended && r.Class == "" && r.Status/100 == 2 {
			w.published = append(w.published, r.Time)
			w.pubSeq = append(w.pubSeq, r.Mark)
		}
		return
	}
	i := r.Stream
	if i < 0 || i >= len(w.total) {
		return
	}
	switch r.Kind {
	case runner.RecordHeaders:
		if r.FirstAccepted {
			w.openAt[i] = r.Time
		}
	case runner.RecordEvent:
		if !w.ended {
			w.total[i]++
		}
		if w.firstEvent[i] == 0 && r.TTFirst > 0 {
			w.firstEvent[i] = r.TTFirst
		}
		if r.Mark >= 0 {
			if w.minMark[i] < 0 || r.Mark < w.minMark[i] {
				w.minMark[i] = r.Mark
			}
			w.maxMark[i] = max(w.maxMark[i], r.Mark)
		}
	case runner.RecordReconnect:
		w.quick[i] = max(w.quick[i], r.QuickEnds)
	}
}

// end closes the counting at t, the end of the hold window.
func (w *holdTargetWatch) end(t time.Time) { w.ended, w.endAt = true, t }

// judgeExcessEvents: events beyond what the target produced.
func judgeExcessEvents(h *Harness, c *CheckSpec, w *holdTargetWatch, inWindow []int, holdFor time.Duration, streams func(func(int) bool)) {
	publishing := h.markPrefix != ""
	// Events beyond what the target produced: history replayed on a fresh connect, a
	// replay flood. Produced: the marks published while the stream was open, or the
	// stream's own rate in the hold window over the time it was open.
	limit := h.num(c)
	judged, over := 0, 0
	got, made := report.NewHistogram(), report.NewHistogram()
	streams(func(i int) bool {
		if w.openAt[i].IsZero() || inWindow[i] == 0 || !w.endAt.After(w.openAt[i]) {
			return true
		}
		var produced float64
		if publishing {
			k := sort.Search(len(w.published), func(j int) bool { return !w.published[j].Before(w.openAt[i]) })
			produced = float64(len(w.published) - k)
		} else {
			// The stream's rate from its events in the window, allowing one more for the
			// window's edges: k events in a window bound the rate only to within one, which
			// at a slow tick (2 events in a 30 s window) is half of it.
			produced = float64(inWindow[i]+1) / holdFor.Seconds() * w.endAt.Sub(w.openAt[i]).Seconds()
		}
		judged++
		got.Add(float64(w.total[i]))
		made.Add(produced)
		// Two events of slack for ticks at the window's edges.
		if float64(w.total[i]) > limit*produced+2 {
			over++
		}
		return true
	})
	if judged == 0 {
		h.notApplicable(c, "no stream got events in the hold window: nothing to compare with what the target produced")
	} else {
		g, _ := got.Percentile(50)
		p, _ := made.Percentile(50)
		source := fmt.Sprintf("its own rate in the %s hold window", holdFor)
		if publishing {
			source = fmt.Sprintf("%d marks published", len(w.published))
		}
		h.offenders(c, over, judged, fmt.Sprintf("%d of %d streams got more than %.1f times the events the target produced; the median stream got %.0f events where the target produced about %.0f (%s)",
			over, judged, limit, g, p, source))
	}
}

// judgeFirstEvent: a held head or first event.
func judgeFirstEvent(h *Harness, c *CheckSpec, w *holdTargetWatch, wm, all report.Metrics, streams func(func(int) bool)) {
	// A held head or first event: later than the limit, and later than the target's own
	// rhythm explains.
	gapP50 := time.Duration(wm.Gap.P50MS * float64(time.Millisecond))
	allowed := max(h.dur(c), 3*gapP50)
	late, withEvent := 0, 0
	var slowest time.Duration
	streams(func(i int) bool {
		if d := w.firstEvent[i]; d > 0 {
			withEvent++
			slowest = max(slowest, d)
			if d > allowed {
				late++
			}
		}
		return true
	})
	if withEvent == 0 {
		h.notApplicable(c, "no stream got an event")
	} else {
		note := fmt.Sprintf("%d of %d streams got their first event after more than %s (the limit %s, the target's median gap between events %s); the slowest after %s",
			late, withEvent, allowed.Round(time.Millisecond), h.dur(c), gapP50.Round(time.Millisecond), slowest.Round(time.Millisecond))
		if hd := all.TimeToHeaders; hd.Count > 0 {
			note += fmt.Sprintf(", response heads after %s (median)", fmtMS(hd.P50MS))
			if hd.P50MS >= 1000 {
				note += fmt.Sprintf(": the head was held %.1f s", hd.P50MS/1000)
			}
		}
		h.offenders(c, late, withEvent, note)
	}
}

// judgeQuickEnds: streams that keep ending at once.
func judgeQuickEnds(h *Harness, c *CheckSpec, w *holdTargetWatch, all report.Metrics, streams func(func(int) bool)) {
	// Streams that keep ending at once (a stream ended by a lifetime limit lives
	// longer than a second, so its reconnects do not count).
	if all.Attempts == 0 {
		h.notApplicable(c, "no connection attempt was made")
	} else {
		maxQuick := int(h.num(c))
		offenders, mine := 0, 0
		streams(func(i int) bool {
			mine++
			if w.quick[i] > maxQuick {
				offenders++
			}
			return true
		})
		floor := h.opts.MinReconnect
		if floor <= 0 {
			floor = runner.DefaultMinReconnect
		}
		// The scenario's reconnect rate as the report shows it (the reconnect_rate
		// metric: every reconnect over the scenario so far).
		h.offenders(c, offenders, mine, fmt.Sprintf("%d of %d streams saw more than %s in a row end within a second of opening; reconnect rate: %s (the %s reconnect floor allows at most %.0f per second per stream)",
			offenders, mine, plural(maxQuick, "attempt", "attempts"), report.ReconnectRateText(all.Reconnects, all.Streams, time.Since(h.start)),
			floor, math.Floor(float64(time.Second)/float64(floor))))
	}
}

// edgeMarksMeasure is the measure of marks a stream missed at the edges of what it
// received; hold's no-missing-ids adds it to the gaps between received marks.
const edgeMarksMeasure = "marks-missed-at-edges"

// recordEdgeMarks counts the marks each stream missed at the edges of what it
// received: published from a second after it opened until a second before the window
// ended (time enough to arrive), but lower than its first mark or higher than its last
// one. The gaps between its first and last marks are the aggregate's marks_lost.
func recordEdgeMarks(h *Harness, w *holdTargetWatch, streams func(func(int) bool)) {
	const settle = time.Second
	missed, judged, streamsMissing := 0, 0, 0
	streams(func(i int) bool {
		if w.openAt[i].IsZero() {
			return true
		}
		judged++
		n := edgeMarksOf(w.published, w.pubSeq, w.openAt[i].Add(settle), w.endAt.Add(-settle), w.minMark[i], w.maxMark[i])
		missed += n
		if n > 0 {
			streamsMissing++
		}
		return true
	})
	h.measure(report.Measure{Name: edgeMarksMeasure, Value: float64(missed), Of: int64(judged), Merge: report.MergeSum,
		Note: fmt.Sprintf("%d marks missed before a stream's first or after its last received mark (%d of %d streams), of %d published; gaps between received marks are added",
			missed, streamsMissing, judged, len(w.published))})
}

// edgeMarksOf counts the marks published from `from` to `to` (inclusive) that are
// lower than first or higher than last (first <= last: a stream's lowest and highest
// mark received; every one when last < 0: none received).
// published and seqs are in publish order, in which both times and sequence numbers
// rise (one Publisher, one mark at a time), so the count is four binary searches per
// stream, not a pass over every mark.
func edgeMarksOf(published []time.Time, seqs []int64, from, to time.Time, first, last int64) int {
	lo := sort.Search(len(published), func(j int) bool { return !published[j].Before(from) })
	hi := sort.Search(len(published), func(j int) bool { return published[j].After(to) })
	if hi <= lo {
		return 0
	}
	if last < 0 {
		return hi - lo
	}
	in := seqs[lo:hi]
	below := sort.Search(len(in), func(j int) bool { return in[j] >= first })
	above := len(in) - sort.Search(len(in), func(j int) bool { return in[j] > last })
	return below + above
}

// deliveryRules names the metrics of lost and repeated deliveries and the evidence
// each needs: the harness's own marks when it publishes (they are the truth whatever
// the target's ids look like), else the target's ids (gaps only from numeric ids,
// repeats from any).
func (h *Harness) deliveryRules() (lost, dup, late string, lostNeeds, dupNeeds []report.Evidence) {
	if h.markPrefix != "" {
		marks := []report.Evidence{report.EvidenceMarks}
		return "marks_lost", "mark_duplicates", "marks_out_of_order", marks, marks
	}
	return "missing_ids", "duplicate_ids", "out_of_order_ids",
		[]report.Evidence{report.EvidenceEvent, report.EvidenceNumericIDs}, []report.Evidence{report.EvidenceEvent}
}

func fmtMS(v float64) string { return ms(time.Duration(v * float64(time.Millisecond))) }
