package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// quiet-open: streams of sessions with nothing to say yet must still open at once. A
// framework that sends the status and headers only with the first write leaves a quiet
// stream without a head, so the browser's onopen never fires and clients time out or
// reconnect. The embedded server has no ticks and a heartbeat slower than the limit, so
// only a head sent on open meets it.
func quietOpen() *Scenario {
	ck := quietOpenChecks{
		headWithin: &CheckSpec{Name: "head-within", Default: "1s", Means: "every stream of a quiet session has its response head (status 200, text/event-stream) within"},
	}
	return &Scenario{
		Name:       "quiet-open",
		Proves:     "streams of quiet sessions (no events yet) are open (response head received) at once, not at the first event",
		Catches:    []string{"late-head"},
		Checks:     ck.all(),
		ServerArgs: []string{"--tick", "0", "--heartbeat", "3s"},
		run:        func(ctx context.Context, h *Harness) error { return runQuietOpen(ctx, h, ck) },
	}
}

// quietOpenChecks are QuietOpen's checks, declared once: the run names them as fields, so
// a check that is not declared cannot be named.
type quietOpenChecks struct{ headWithin *CheckSpec }

func (c quietOpenChecks) all() []*CheckSpec { return []*CheckSpec{c.headWithin} }

func runQuietOpen(ctx context.Context, h *Harness, ck quietOpenChecks) error {
	n := h.Streams(10)
	within := h.Dur(ck.headWithin)
	// Long enough past the limit that a late head (one sent with the first heartbeat)
	// is still measured, so the result says how late it was.
	observe := within + 5*time.Second
	h.Request(n, n, observe, fmt.Sprintf("%d quiet sessions, one browser each; heads awaited for up to %s", n, observe))
	srcs, err := h.OpenSessions(ctx, "q", n, func(c *runner.SourceConfig) { c.NoReconnect = true })
	if err != nil {
		return err
	}
	late := WaitAll(ctx, srcs, observe, func(ctx context.Context, s *runner.EventSource) error { return s.WaitOpen(ctx) })
	h.Finish()
	if len(late) == len(srcs) {
		if err := h.unreachable(srcs); err != nil {
			return err
		}
	}
	// Every stream must have opened (a stream still without a head is the worst case of
	// all), and the slowest head must be within the limit.
	h.Judge(ck.headWithin, report.Rule{Metric: "headers_max", Op: "<=", Limit: h.LimitValue(ck.headWithin),
		Needs: []report.Evidence{report.EvidenceOpened},
		And:   []report.Rule{{Metric: "unopened_streams", Op: "<=", Limit: 0}}})
	if len(late) > 0 {
		h.Note("%d of %d streams had no head after %s", len(late), len(srcs), observe)
	}
	return nil
}
