package reference_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// Progress callbacks for ids nobody opened (junk, or a job reporting before its page
// connects) must not use up the room streams need (issue 12).

func TestJunkCallbacksDoNotStarveStreams(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.MaxSessions = 100
		cfg.Tick = 0
	})
	for i := range 100 {
		if code, body := post(t, fmt.Sprintf("%s/sessions/junk-%d/progress", base, i), `{"progress":1}`, nil); code != http.StatusOK {
			t.Fatalf("junk callback %d: status %d %s; early progress is on by default", i, code, body)
		}
	}
	for i := range 100 {
		c := open(t, fmt.Sprintf("%s/sessions/real-%d/events", base, i), nil)
		if c.resp.StatusCode != http.StatusOK {
			t.Fatalf("real stream %d after 100 junk callbacks: status %d, want 200", i, c.resp.StatusCode)
		}
	}
	awaitMetrics(t, base, wait, "100 streams open together", func(m map[string]float64) bool {
		return m["sseref_streams_open"] == 100
	})
}

func TestEarlySessionsHaveTheirOwnCap(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.MaxSessions = 3
		cfg.MaxEarlySessions = 2
	})
	progress(t, base, "e1", 10, "early")
	progress(t, base, "e2", 10, "early")
	code, _ := post(t, base+"/sessions/e3/progress", `{"progress":10}`, nil)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("third early session with max-early-sessions 2: status %d, want 503", code)
	}
	// Early progress is kept for the stream that comes: it opens with the event replayed.
	c := open(t, base+"/sessions/e1/events", map[string]string{"Last-Event-ID": "0"})
	if fs := c.awaitEvents(wait, "progress", 1); !events(fs, "progress")[0].data(t).Replayed {
		t.Fatal("the early progress event did not reach the first stream as a replay")
	}
	// Opening it made e1 an ordinary session: room for one more early one.
	progress(t, base, "e3", 10, "early")
	for _, id := range []string{"s1", "s2"} {
		open(t, base+"/sessions/"+id+"/events", nil).awaitEvents(wait, "connected", 1)
	}
}

func TestEarlySessionsAreForgottenAfterTheirTTL(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.EarlySessionTTL = 100 * time.Millisecond
		cfg.SessionTTL = time.Hour
	})
	c := open(t, base+"/sessions/streamed/events", nil)
	c.awaitEvents(wait, "connected", 1)
	c.close()
	awaitMetrics(t, base, wait, "stream closed", func(m map[string]float64) bool { return m["sseref_streams_open"] == 0 })
	progress(t, base, "early", 10, "nobody opens this one")
	awaitMetrics(t, base, wait, "the early session forgotten, the streamed one kept", func(m map[string]float64) bool {
		return m["sseref_sessions_active"] == 1
	})
	// The streamed session is the one kept: a resume finds its events.
	c2 := open(t, base+"/sessions/streamed/events", map[string]string{"Last-Event-ID": "0"})
	if fs := c2.awaitEvents(wait, "connected", 1); strings.Contains(strings.Join(fs[len(fs)-1].Comments, ""), "lost") {
		t.Fatalf("streamed session was forgotten: %s", summary(fs))
	}
}

func TestEarlyProgressOffIs404ForUnopenedSessions(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.MaxEarlySessions = 0 })
	if code, body := post(t, base+"/sessions/nobody/progress", `{"progress":10}`, nil); code != http.StatusNotFound {
		t.Fatalf("callback for an unopened session with early progress off: status %d %s, want 404", code, body)
	}
	c := open(t, base+"/sessions/open/events", nil)
	c.awaitEvents(wait, "connected", 1)
	progress(t, base, "open", 10, "to an open session")
	c.awaitEvents(wait, "progress", 1)
	if m := scrape(t, base); m["sseref_sessions_active"] != 1 {
		t.Fatalf("sessions_active = %v, want 1: the refused callback made none", m["sseref_sessions_active"])
	}
}
