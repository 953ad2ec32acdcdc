package scenarios

import (
	"context"
	"fmt"

	"github.com/sseharness/sseharness/runner"
)

// completion: progress callbacks drive each session to 100. The stream must get `done`,
// the server must end it, and the client's reconnect must get 204 so that it stops.
func completion() *Scenario {
	done := Mark{Event: "done"}
	streamEnded := &CheckSpec{Name: "stream-ended", Default: "2s", Means: "server ended the stream after done within",
		Span: &Span{From: done, To: Mark{Close: runner.CloseEOF, AfterOf: "done"}}}
	return &Scenario{
		Name:    "completion",
		Proves:  "a finished job ends its stream and answers the reconnect with 204, so clients stop instead of looping",
		Catches: []string{"no-204"},
		Checks: []*CheckSpec{
			{Name: "done-received", Default: "5s", Means: "every stream got done within", Span: &Span{From: Mark{Hook: true}, To: done}},
			streamEnded,
			// The client waits its reconnection time after the stream ends, then must get
			// 204 and stop.
			{Name: "stops-on-204", Default: "3s", Means: "client stopped by a 204 within retry plus",
				Span: &Span{From: done, To: Mark{Close: runner.CloseNoContent}, Plus: []*CheckSpec{streamEnded}, PlusRetry: true}},
		},
		Needs:      []Capability{NeedSessions, NeedCallback},
		ServerArgs: []string{"--retry", "1s"},
		Load:       []Phase{{Streams: 10, Until: UntilEvents, Events: 1, Describe: "sessions driven to 100% by progress callbacks 25, 50, 75, 100"}},
		hook:       driveToDone,
	}
}

// driveToDone is completion's hook: each session's progress callback reports 25, 50,
// 75 and 100 percent, as an upstream worker finishing the job would.
func driveToDone(ctx context.Context, h *Harness, opened Opened) error {
	for _, s := range opened.Phases[0] {
		for _, p := range []int{25, 50, 75, 100} {
			if err := h.PostProgress(ctx, h.Session("", s.Stream()), p, fmt.Sprintf("step %d", p)); err != nil {
				return err
			}
		}
	}
	return nil
}
