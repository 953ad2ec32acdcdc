package scenarios

import (
	"time"

	"github.com/sseharness/sseharness/report"
)

// six-connection-limit: browsers open more than 6 streams to one origin. Over HTTP/1.1
// browsers allow 6 connections per origin, so the 7th stream, and any other request to
// that origin, waits for one to close. Over HTTP/2 all streams share one connection.
func sixConnectionLimit() *Scenario {
	// Every stream a page opens must be open (a stream still waiting for a connection
	// never opened), and the slowest head within the limit.
	streamsOpen := streamsOpenCheck("every stream a page opens is open within")
	return &Scenario{
		Name:    "six-connection-limit",
		Proves:  "a browser can open more than 6 streams to the origin, and still make ordinary requests, without stalling (needs HTTP/2)",
		Catches: []string{"plain HTTP/1.1 (serve without --tls)"},
		Checks: []*CheckSpec{
			streamsOpen,
			{Name: "ordinary-request", Default: "2s", Means: "an ordinary request to the origin completes within", Fetch: &Fetch{Phase: 0, AfterOpen: 6}},
		},
		ServerArgs: []string{"--tls"},
		Load: []Phase{{Streams: 16, PerBrowser: 8, NoReconnect: true, Until: UntilOpen, Within: streamsOpen, Slack: time.Second,
			Describe: "browsers opening streams to one origin, each with one ordinary request",
			Missed:   "over HTTP/1.1 a browser opens at most 6 connections per origin; serve over HTTP/2, or share one stream per page"}},
	}
}

// streamsOpenCheck is the streams-open check of six-connection-limit and h2-stream-cap,
// with its meaning: no stream unopened, and the slowest response head within the
// threshold (default 2s).
func streamsOpenCheck(means string) *CheckSpec {
	return &CheckSpec{Name: "streams-open", Default: "2s", Means: means,
		Rule: &report.Rule{Metric: "unopened_streams", Op: "<=", Limit: 0, Needs: []report.Evidence{report.EvidenceOpened},
			And: []report.Rule{{Metric: "headers_max", Op: "<=", Limit: AtThreshold}}}}
}
