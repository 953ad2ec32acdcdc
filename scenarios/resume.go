package scenarios

import (
	"context"
	"fmt"
	"time"
)

// resume: clients drop while events keep being produced, then come back with
// Last-Event-ID; every id must arrive exactly once, in order.
func resume() *Scenario {
	return &Scenario{
		Name:    "resume",
		Proves:  "a client that reconnects with Last-Event-ID gets every event produced while it was away exactly once, in order",
		Catches: []string{"no-replay"},
		// Ids lost, repeated and out of order are counted by the aggregate over every
		// event, from publish-driven marks when there are any, else the target's numeric
		// ids; resumed counts the clients not back with what they missed plus one live
		// event after it.
		Checks: []*CheckSpec{
			{Name: "ids-exactly-once", Default: "0", Means: "ids missing or repeated", Delivery: LostOrDuplicateIDs},
			{Name: "ids-in-order", Default: "0", Means: "ids out of order", Delivery: OutOfOrderIDs},
			{Name: "resumed", Default: "15s", Means: "every client back with the events it missed within",
				Reach: &Reach{Phase: 0, Until: Resumed, Events: 1, Slack: resumeAway}},
		},
		ServerArgs: []string{"--tick", "200ms"},
		Publish:    true,
		Load: []Phase{{Streams: 10, Until: UntilEvents, Events: 2,
			Describe: fmt.Sprintf("clients that leave for %s while %d progress events are produced, then resume", resumeAway, resumePosts)}},
		hook: leaveWhileProducing,
	}
}

const (
	resumeAway  = 2 * time.Second // how long each client stays away
	resumePosts = 3               // progress events produced per session meanwhile
)

// leaveWhileProducing is resume's hook: every client leaves for resumeAway (and then
// reconnects with Last-Event-ID), and each session's progress callback produces
// resumePosts events meanwhile.
func leaveWhileProducing(ctx context.Context, h *Harness, opened Opened) error {
	srcs := opened.All()
	for _, s := range srcs {
		s.Leave(resumeAway, false)
	}
	if !h.HasCallback() {
		h.Note("no progress callback: only events the target produces by itself are checked across the gap")
		return nil
	}
	for _, s := range srcs {
		for p := 1; p <= resumePosts; p++ {
			if err := h.PostProgress(ctx, h.Session("", s.Stream()), p*10, fmt.Sprintf("while away %d", p)); err != nil {
				return err
			}
		}
	}
	return nil
}
