package scenarios

import (
	"context"

	"github.com/sseharness/sseharness/proxy"
)

// reconnect-storm: every stream is cut at once (a proxy restart). All clients come back
// after the reconnection time, resume, and lose nothing.
func reconnectStorm() *Scenario {
	return &Scenario{
		Name:    "reconnect-storm",
		Proves:  "after every stream is cut at once, all clients are back within retry plus a margin, with no id lost or repeated",
		Catches: []string{"no-replay"},
		Checks: []*CheckSpec{
			{Name: "reconnected", Default: "2s", Means: "every client open again within its retry plus",
				Reach: &Reach{Phase: 0, Until: Resumed, Events: 1, PlusRetry: true}},
			{Name: "no-lost-ids", Default: "0", Means: "ids missing after the resume", Delivery: LostIDs},
			{Name: "no-duplicate-ids", Default: "0", Means: "ids repeated after the resume", Delivery: DuplicateIDs},
		},
		ServerArgs: []string{"--retry", "1s", "--tick", "200ms"},
		Publish:    true,
		Load: []Phase{{Streams: 60, Through: &proxy.Config{Listen: "127.0.0.1:0", NoBuffering: true}, Until: UntilEvents, Events: 2,
			Describe: "every stream through a pass-through proxy that cuts all connections at once"}},
		// The reconnections after the cut: a window whose aggregate has the reconnect
		// delays and the reopened attempts.
		HookWindow: "after-cut",
		hook:       cutAllWhileProducing,
	}
}

// cutAllWhileProducing is reconnect-storm's hook: the proxy cuts every stream at once,
// and each session's progress callback produces an event while the clients wait to
// reconnect, which must arrive once after the resume.
func cutAllWhileProducing(ctx context.Context, h *Harness, opened Opened) error {
	opened.Proxies[0].CutAll()
	if !h.HasCallback() {
		h.Note("no progress callback: only events the target produces by itself are checked across the cut")
		return nil
	}
	for _, s := range opened.Phases[0] {
		if err := h.PostProgress(ctx, h.Session("", s.Stream()), 10, "during the storm"); err != nil {
			return err
		}
	}
	return nil
}
