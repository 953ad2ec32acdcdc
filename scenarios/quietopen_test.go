package scenarios

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// quietStreamServer is a double of a quiet SSE endpoint: it sends nothing but a
// heartbeat comment after heartbeat, and its head either at once or (as frameworks
// that send the head with the first write do) only with that comment.
func quietStreamServer(t *testing.T, headWithFirstWrite bool, heartbeat time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if !headWithFirstWrite {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		}
		timer := time.NewTimer(heartbeat)
		defer timer.Stop()
		select {
		case <-timer.C:
			_, _ = w.Write([]byte(": ping\n\n"))
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runQuietOpenAgainst(t *testing.T, url string) report.Check {
	t.Helper()
	res := runAgainst(t, quietOpen(), Options{Target: url, StreamTemplate: "{target}/s/{session}", Streams: 3,
		Thresholds: map[string]string{"quiet-open/head-within": "300ms"}})
	for _, c := range res.Checks {
		if c.Name == "head-within" {
			return c
		}
	}
	t.Fatalf("no head-within check in %+v", res.Checks)
	return report.Check{}
}

// TestQuietOpenPassesAHeadOnOpen: a quiet stream whose head comes at once passes.
func TestQuietOpenPassesAHeadOnOpen(t *testing.T) {
	c := runQuietOpenAgainst(t, quietStreamServer(t, false, time.Hour).URL)
	if c.Verdict != report.VerdictPass {
		t.Errorf("head at once: %s (%s; %s), want pass", c.Verdict, c.Measured, c.Detail)
	}
}

// TestQuietOpenFailsAHeadWithTheFirstWrite: the head held until the first heartbeat
// (past the limit) fails, measured at the heartbeat's time.
func TestQuietOpenFailsAHeadWithTheFirstWrite(t *testing.T) {
	c := runQuietOpenAgainst(t, quietStreamServer(t, true, 800*time.Millisecond).URL)
	if c.Verdict != report.VerdictFail {
		t.Errorf("head with the first write: %s (%s; %s), want fail", c.Verdict, c.Measured, c.Detail)
	}
}
