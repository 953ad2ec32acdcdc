package scenarios

import (
	"time"

	"github.com/sseharness/sseharness/report"
)

// quiet-open: streams of sessions with nothing to say yet must still open at once. A
// framework that sends the status and headers only with the first write leaves a quiet
// stream without a head, so the browser's onopen never fires and clients time out or
// reconnect. The embedded server has no ticks and a heartbeat slower than the limit, so
// only a head sent on open meets it.
func quietOpen() *Scenario {
	// Every stream must have opened (a stream still without a head is the worst case
	// of all), and the slowest head must be within the limit.
	headWithin := everyStreamWithin("head-within", "1s", "every stream of a quiet session has its response head (status 200, text/event-stream) within",
		"headers_max", "unopened_streams", report.EvidenceOpened)
	return &Scenario{
		Name:       "quiet-open",
		Proves:     "streams of quiet sessions (no events yet) are open (response head received) at once, not at the first event",
		Catches:    []string{"late-head"},
		Checks:     []*CheckSpec{headWithin},
		ServerArgs: []string{"--tick", "0", "--heartbeat", "3s"},
		// Heads are awaited long enough past the limit that a late head (one sent with
		// the first heartbeat) is still measured, so the result says how late it was.
		Load: []Phase{{Streams: 10, Tag: "q", NoReconnect: true, Until: UntilOpen, Within: headWithin, Slack: 5 * time.Second,
			Describe: "quiet sessions"}},
	}
}
