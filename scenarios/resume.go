package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// resume: clients drop while events keep being produced, then come back with
// Last-Event-ID; every id must arrive exactly once, in order.
func resume() *Scenario {
	ck := resumeChecks{
		idsExactlyOnce: &CheckSpec{Name: "ids-exactly-once", Default: "0", Means: "ids missing or repeated"},
		idsInOrder:     &CheckSpec{Name: "ids-in-order", Default: "0", Means: "ids out of order"},
		resumed:        &CheckSpec{Name: "resumed", Default: "15s", Means: "every client back with the events it missed within"},
	}
	return &Scenario{
		Name:       "resume",
		Proves:     "a client that reconnects with Last-Event-ID gets every event produced while it was away exactly once, in order",
		Catches:    []string{"no-replay"},
		Checks:     ck.all(),
		ServerArgs: []string{"--tick", "200ms"},
		run:        func(ctx context.Context, h *Harness) error { return runResume(ctx, h, ck) },
	}
}

// resumeChecks are Resume's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type resumeChecks struct{ idsExactlyOnce, idsInOrder, resumed *CheckSpec }

func (c resumeChecks) all() []*CheckSpec {
	return []*CheckSpec{c.idsExactlyOnce, c.idsInOrder, c.resumed}
}

func runResume(ctx context.Context, h *Harness, ck resumeChecks) error {
	n := h.Streams(10)
	away := 2 * time.Second
	posts := 3 // progress events produced per session while its client is away
	within := h.Dur(ck.resumed)
	h.Request(n, n, away, fmt.Sprintf("each client leaves for %s while %d progress events are produced, then resumes", away, posts))

	publishing, err := h.PreparePublish(within + away + startTimeout)
	if err != nil {
		return err
	}
	srcs, err := h.OpenSessions(ctx, "", n, nil)
	if err != nil {
		return err
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
		s.Leave(away, false)
	}
	callback := h.HasCallback()
	if callback {
		for i := range n {
			for p := 1; p <= posts; p++ {
				if err := h.PostProgress(ctx, h.Session("", i), p*10, fmt.Sprintf("while away %d", p)); err != nil {
					return err
				}
			}
		}
	} else {
		h.Note("no progress callback: only events the target produces by itself are checked across the gap")
	}
	start := time.Now()
	// Back: each client must reopen and receive at least the events produced meanwhile
	// plus one live event after them.
	need := int64(posts + 1)
	if !callback {
		need = 1
	}
	notBack := WaitAll(ctx, srcs, within+away, func(ctx context.Context, s *runner.EventSource) error {
		if err := s.WaitOpens(ctx, 2); err != nil {
			return err
		}
		return s.WaitEvents(ctx, before[s.Stream()]+need)
	})
	took := time.Since(start)
	h.Finish()

	// Ids lost, repeated and out of order are counted by the aggregate over every
	// event: rules, so merged shards are judged exactly.
	// With publish-driven marks they are the truth; else the target's numeric ids.
	lost, dup, late, needs, _ := h.deliveryRules()
	h.Judge(ck.idsExactlyOnce, report.Rule{Metric: lost, Plus: []report.Term{{Metric: dup}},
		Op: "<=", Limit: h.LimitValue(ck.idsExactlyOnce), Needs: needs})
	h.CheckRule(ck.idsInOrder, late, "<=", needs...)
	note := fmt.Sprintf("all %d clients resumed within %s", n, ms(took))
	if len(notBack) > 0 {
		note = fmt.Sprintf("%d of %d clients did not get their missed events within %s", len(notBack), n, within+away)
	}
	h.Offenders(ck.resumed, len(notBack), n, note)
	return nil
}
