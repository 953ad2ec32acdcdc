package scenarios

import (
	"fmt"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// starvation: many sessions open at once; each must get its first event soon. A server
// whose senders run on a fixed pool of N long-running workers never serves session N+1.
func starvation() *Scenario {
	// Every stream got a first event, and the slowest first event came in time: both
	// from the aggregate.
	firstEvent := everyStreamWithin("first-event", "3s", "every stream's first event within", "ttfe_max", "silent_streams", report.EvidenceEvent)
	return &Scenario{
		Name:    "starvation",
		Proves:  "every one of many sessions opened at once gets its first event promptly (no fixed sender pool starves stream N+1)",
		Catches: []string{"pool=N"},
		Checks:  []*CheckSpec{firstEvent},
		// Awaited a little past the threshold, so a late first event is measured, not
		// guessed.
		Load: []Phase{{Streams: 30, NoReconnect: true, Until: UntilEvents, Events: 1, Within: firstEvent, Slack: time.Second,
			Describe: "sessions opened at once"}},
	}
}

// everyStreamWithin is a check that every stream has something within the threshold:
// the slowest stream's figure (maxMetric) is within it, and no stream is without one
// (missingMetric, the streams that never had it, is 0). It needs evidence needs.
func everyStreamWithin(name, def, means, maxMetric, missingMetric string, needs report.Evidence) *CheckSpec {
	return &CheckSpec{Name: name, Default: def, Means: means,
		Rule: &report.Rule{Metric: maxMetric, Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{needs},
			And: []report.Rule{{Metric: missingMetric, Op: "<=", Limit: 0}}}}
}

// unreachable explains why no stream ever got an event when none opened: the target
// refused, failed or answered with something other than an event stream. The harness
// turns it into a failure of every check the scenario has not judged (or, when the
// target never answered at all, into "target unreachable").
func (h *Harness) unreachable(srcs []*runner.EventSource) error {
	opened := 0
	reasons := map[runner.CloseReason]int{}
	for _, s := range srcs {
		if s.Opens() > 0 {
			opened++
		}
		reasons[s.Reason()]++
	}
	if opened > 0 {
		return nil // streams opened: the lack of events is a finding, not an error
	}
	m := h.agg.Metrics()
	why := breakdownCounts(m.NotOpened)
	if why == "" {
		why = fmt.Sprintf("close reasons %v", reasons)
	}
	return notStarted(fmt.Sprintf("no stream opened (not opened: %s)", why))
}
