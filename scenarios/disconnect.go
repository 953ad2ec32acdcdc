package scenarios

import (
	"context"
	"fmt"

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/runner"
)

// mid-stream-disconnect: clients drop abruptly mid-stream, half with a clean close and
// half with a reset. The server must notice: its open streams, senders and goroutines
// return to their baseline.
func midStreamDisconnect() *Scenario {
	ck := disconnectChecks{
		streamsReleased:    &CheckSpec{Name: "streams-released", Default: "5s", Means: "open streams back to baseline within"},
		sendersStopped:     &CheckSpec{Name: "senders-stopped", Default: "5s", Means: "senders back to baseline within"},
		goroutinesReleased: &CheckSpec{Name: "goroutines-released", Default: "5s", Means: "goroutines back to baseline (+2% of streams, +5) within"},
	}
	return &Scenario{
		Name:       "mid-stream-disconnect",
		Proves:     "when clients drop mid-stream (FIN or RST) the server notices, stops their senders and frees their goroutines",
		Catches:    []string{"leak-on-disconnect"},
		Checks:     ck.all(),
		Needs:      []Capability{NeedMetrics},
		ServerArgs: []string{"--tick", "200ms"},
		run:        func(ctx context.Context, h *Harness) error { return runDisconnect(ctx, h, ck) },
	}
}

// disconnectChecks are Disconnect's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type disconnectChecks struct{ streamsReleased, sendersStopped, goroutinesReleased *CheckSpec }

func (c disconnectChecks) all() []*CheckSpec {
	return []*CheckSpec{c.streamsReleased, c.sendersStopped, c.goroutinesReleased}
}

func runDisconnect(ctx context.Context, h *Harness, ck disconnectChecks) error {
	n := h.Streams(40)
	h.Request(n, n, 0, "streams dropped mid-stream: half with FIN, half with RST")
	base, ok := h.Scrape(ctx)
	if !ok {
		for _, c := range ck.all() {
			h.NA(c, "the target's metrics could not be read at --metrics-url: only the server can tell whether it noticed")
		}
		return nil
	}
	srcs, err := h.OpenSessions(ctx, "", n, func(c *runner.SourceConfig) { c.NoReconnect = true })
	if err != nil {
		return err
	}
	failed, err := h.AwaitStarted(ctx, srcs, 2)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		h.Note("%d of %d streams had not got two events before the drop", len(failed), n)
	}
	if s, ok := h.Scrape(ctx); ok {
		if v, ok := s.Value(h.opts.OpenStreamsMetric); ok {
			h.Note("server reported %.0f open streams before the drop", v)
		}
	}
	for i, s := range srcs {
		if i%2 == 0 {
			s.Close()
		} else {
			s.Reset()
		}
	}
	h.Finish()

	check := func(name *CheckSpec, metric string, slack float64) {
		b, ok := base.Value(metric)
		if !ok {
			h.NA(name, "the target exposes no "+orNone(metric)+" metric")
			return
		}
		within := h.Dur(name)
		var last float64
		took, held, _ := h.AwaitMetric(ctx, metric, within, func(v float64) bool { last = v; return v <= b+slack })
		if held {
			h.Excess(name, 0, fmt.Sprintf("%s back to %.0f (baseline %.0f) after %s", metric, last, b, ms(took)))
		} else {
			h.Excess(name, max(last-(b+slack), 1), fmt.Sprintf("%s still %.0f (baseline %.0f) %s after the drop", metric, last, b, within))
		}
	}
	check(ck.streamsReleased, h.opts.OpenStreamsMetric, 0)
	check(ck.sendersStopped, h.opts.SendersMetric, 0)
	check(ck.goroutinesReleased, probe.MetricGoroutines, 5+0.02*float64(n))
	return nil
}
