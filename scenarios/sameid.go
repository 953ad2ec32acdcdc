package scenarios

import (
	"fmt"
	"time"

	"github.com/sseharness/sseharness/report"
)

// same-id-reconnect: a page reload opens a session's stream again while the old one is
// still open. The server must end the old stream and leave exactly one sender pushing.
func sameIDReconnect() *Scenario {
	return &Scenario{
		Name:    "same-id-reconnect",
		Proves:  "a same-id reconnect (page reload, also several at once) ends the old stream and leaves exactly one sender per session",
		Catches: []string{"no-replace"},
		Checks: []*CheckSpec{
			{Name: "old-stream-ended", Default: "2s", Means: "old stream ended within",
				Reach: &Reach{Phase: 0, Until: Ended, AfterOpening: 1, Missed: "the server kept the replaced stream open"}},
			{Name: "one-stream-per-session", Default: "0", Means: "sessions with more than one open stream", OpenPerSession: true},
			{Name: "one-sender", Default: "0", Means: "new streams fed by more than one sender", Senders: &Senders{Phase: 1}},
			{Name: "no-duplicate-ids", Default: "0", Means: "duplicated ids on new streams",
				Rule: &report.Rule{Metric: "duplicate_ids", Group: "reloaded", Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceEvent}}},
			{Name: "server-duplicate-senders", Default: "0", Means: "increase of the server's duplicate-sender counter", Delta: &Delta{Metric: DuplicateSendersMetric}},
			{Name: "server-senders", Default: "0", Means: "server senders beyond open sessions", Delta: &Delta{Metric: SendersMetric, MinusOpenSessions: true}},
		},
		Needs: []Capability{NeedSessions},
		Load: []Phase{
			{Streams: 10, NoReconnect: true, Until: UntilEvents, Events: 2, Describe: "sessions open"},
			// The reload: one new stream per session while the old one is open, and
			// several at once for some; the losers of a burst end, the winner must get
			// a few events.
			{Group: "reloaded", Reopen: &Reopen{Phase: 0, Burst: sameIDBurst, BurstSessions: 3}, NoReconnect: true,
				Until: UntilEventsOrEnd, Events: 3, Wait: 5 * time.Second,
				Describe: fmt.Sprintf("the same sessions reopened, 3 of them %d times at once", sameIDBurst)},
		},
	}
}

// sameIDBurst is how many streams of one session a burst reload opens at once.
const sameIDBurst = 5
