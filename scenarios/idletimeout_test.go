package scenarios

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// heartbeatServer is a double of a quiet SSE endpoint: head at once, then nothing but a
// heartbeat comment every heartbeat (0: never).
func heartbeatServer(t *testing.T, heartbeat time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		var beat <-chan time.Time
		if heartbeat > 0 {
			tk := time.NewTicker(heartbeat)
			defer tk.Stop()
			beat = tk.C
		}
		for {
			select {
			case <-beat:
				if _, err := w.Write([]byte(": ping\n\n")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runIdleTimeoutAgainst(t *testing.T, url string) map[string]report.Check {
	t.Helper()
	res := runAgainst(t, idleTimeout(), Options{Target: url, StreamTemplate: "{target}/s/{session}", Streams: 2,
		Thresholds: map[string]string{"idle-timeout/longest-silence": "600ms"}})
	out := map[string]report.Check{}
	for _, c := range res.Checks {
		out[c.Name] = c
	}
	return out
}

// TestIdleTimeoutPassesHeartbeatsShorterThanTheTimeout: heartbeats every 200ms keep
// quiet streams through a 600ms idle timeout open for 3.5 timeouts.
func TestIdleTimeoutPassesHeartbeatsShorterThanTheTimeout(t *testing.T) {
	checks := runIdleTimeoutAgainst(t, heartbeatServer(t, 200*time.Millisecond).URL)
	for _, name := range []string{"longest-silence", "builtin-proxy-kept-open"} {
		if c := checks[name]; c.Verdict != report.VerdictPass {
			t.Errorf("%s: %s (%s; %s), want pass", name, c.Verdict, c.Measured, c.Detail)
		}
	}
}

// TestIdleTimeoutFailsWithoutHeartbeats: a quiet stream without heartbeats is cut by
// the proxy's idle timeout, and its silence reaches the timeout.
func TestIdleTimeoutFailsWithoutHeartbeats(t *testing.T) {
	checks := runIdleTimeoutAgainst(t, heartbeatServer(t, 0).URL)
	for _, name := range []string{"longest-silence", "builtin-proxy-kept-open"} {
		if c := checks[name]; c.Verdict != report.VerdictFail {
			t.Errorf("%s: %s (%s; %s), want fail", name, c.Verdict, c.Measured, c.Detail)
		}
	}
}

// TestIdleTimeoutFailsHeartbeatsAtTheTimeout: heartbeats every 585ms, under a 600ms
// idle timeout but within its 5% margin, fail longest-silence, and its threshold says
// which bar it applied. A path's jitter puts such a stream at the timeout.
func TestIdleTimeoutFailsHeartbeatsAtTheTimeout(t *testing.T) {
	checks := runIdleTimeoutAgainst(t, heartbeatServer(t, 585*time.Millisecond).URL)
	c := checks["longest-silence"]
	if c.Verdict != report.VerdictFail {
		t.Errorf("longest-silence: %s (%s; %s), want fail", c.Verdict, c.Measured, c.Detail)
	}
	if !strings.HasPrefix(c.Threshold, "< 570ms (95% of 600ms) (") {
		t.Errorf("longest-silence threshold %q, want it to start with the bar applied, 570ms (95%% of 600ms)", c.Threshold)
	}
}
