package scenarios

import (
	"context"
)

// mid-stream-disconnect: clients drop abruptly mid-stream, half with a clean close and
// half with a reset. The server must notice: its open streams, senders and goroutines
// return to their baseline.
func midStreamDisconnect() *Scenario {
	return &Scenario{
		Name:    "mid-stream-disconnect",
		Proves:  "when clients drop mid-stream (FIN or RST) the server notices, stops their senders and frees their goroutines",
		Catches: []string{"leak-on-disconnect"},
		Checks: []*CheckSpec{
			{Name: "streams-released", Default: "5s", Means: "open streams back to baseline within", Settles: &Settle{Metric: OpenStreamsMetric}},
			{Name: "senders-stopped", Default: "5s", Means: "senders back to baseline within", Settles: &Settle{Metric: SendersMetric}},
			{Name: "goroutines-released", Default: "5s", Means: "goroutines back to baseline (+2% of streams, +5) within", Settles: &Settle{Metric: GoroutinesMetric, Fixed: 5, PerStream: 0.02}},
		},
		Needs:      []Capability{NeedMetrics},
		ServerArgs: []string{"--tick", "200ms"},
		Load: []Phase{{Streams: 40, NoReconnect: true, Until: UntilEvents, Events: 2,
			Describe: "streams dropped mid-stream, half with FIN, half with RST"}},
		hook: dropHalfFINHalfRST,
	}
}

// dropHalfFINHalfRST is mid-stream-disconnect's hook: every other stream ends with a
// clean close (FIN), the rest with a reset (RST), all at once.
func dropHalfFINHalfRST(_ context.Context, _ *Harness, opened Opened) error {
	for i, s := range opened.All() {
		if i%2 == 0 {
			s.Close()
		} else {
			s.Reset()
		}
	}
	return nil
}
