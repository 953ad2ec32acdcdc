package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// h2-stream-cap: a page (or many tabs of one browser) opens more streams than one
// HTTP/2 connection may carry at once. Servers, proxies and CDNs often allow about 100
// concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS); a browser queues the streams
// beyond that on the same connection, without an error and without a second
// connection, so they just never open: the six-connection limit of HTTP/1.1 again, at
// a higher count.
func h2StreamCap() *Scenario {
	ck := h2CapChecks{
		streamsOpen: &CheckSpec{Name: "streams-open", Default: "2s", Means: "every stream a browser opens over one HTTP/2 connection is open (status 200, text/event-stream) within"},
	}
	return &Scenario{
		Name:       "h2-stream-cap",
		Proves:     "a browser can open 120 streams to the origin over HTTP/2 without any waiting for a free stream slot (SETTINGS_MAX_CONCURRENT_STREAMS above the page's streams)",
		Catches:    []string{"serve --h2-max-streams 100 (run --server-arg=--h2-max-streams=100)"},
		Checks:     ck.all(),
		ServerArgs: []string{"--tls"},
		run:        func(ctx context.Context, h *Harness) error { return runH2StreamCap(ctx, h, ck) },
	}
}

// h2CapChecks are H2StreamCap's checks, declared once: the run names them as fields, so
// a check that is not declared cannot be named.
type h2CapChecks struct{ streamsOpen *CheckSpec }

func (c h2CapChecks) all() []*CheckSpec { return []*CheckSpec{c.streamsOpen} }

// h2CapPerBrowser is how many streams each browser opens: 120, measured with Chromium
// against an origin advertising 100 (100 open, 20 waiting, no second connection).
const h2CapPerBrowser = 120

func runH2StreamCap(ctx context.Context, h *Harness, ck h2CapChecks) error {
	n := h.Streams(2 * h2CapPerBrowser)
	perBrowser := min(n, h2CapPerBrowser)
	browsers := max(1, n/perBrowser)
	within := h.Dur(ck.streamsOpen)
	h.Request(browsers*perBrowser, browsers, within, fmt.Sprintf("%d browsers, %d streams each to one origin over one HTTP/2 connection", browsers, perBrowser))

	var srcs []*runner.EventSource
	for b := range browsers {
		br := h.NewBrowser(false)
		for j := range perBrowser {
			i := b*perBrowser + j
			sess := h.Session("", i)
			es, err := h.Open(ctx, br, i, sess, h.StreamURL(sess), func(c *runner.SourceConfig) { c.NoReconnect = true })
			if err != nil {
				return err
			}
			srcs = append(srcs, es)
		}
	}
	start := time.Now()
	waiting := WaitAll(ctx, srcs, within, func(ctx context.Context, s *runner.EventSource) error { return s.WaitOpen(ctx) })
	took := time.Since(start)
	// The waiting streams end first: were the open ones closed first, their freed slots
	// would admit waiting streams during the teardown, and count them as opened.
	for _, s := range waiting {
		s.Close()
	}
	WaitAll(ctx, waiting, 5*time.Second, awaitDone)
	h.Finish()
	if len(waiting) == len(srcs) {
		if err := h.unreachable(srcs); err != nil {
			return err
		}
	}

	// Every stream must have opened within the limit: a stream still waiting for a
	// stream slot never opened, and the slowest head must be within the limit too.
	h.Judge(ck.streamsOpen, report.Rule{Metric: "unopened_streams", Op: "<=", Limit: 0,
		Needs: []report.Evidence{report.EvidenceOpened},
		And:   []report.Rule{{Metric: "headers_max", Op: "<=", Limit: h.LimitValue(ck.streamsOpen)}}})
	proto := h.protocols()
	if len(waiting) > 0 {
		h.Note("%d of %d streams still waiting after %s (%s): the origin allows fewer concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS) than a browser opens; raise it above the streams a page opens, or share one stream per page",
			len(waiting), len(srcs), ms(took), proto)
	} else {
		h.Note("all %d streams open after %s (%s)", len(srcs), ms(took), proto)
	}
	return nil
}
