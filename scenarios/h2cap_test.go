package scenarios

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sseharness/sseharness/report"
)

// h2StreamServer is a double of an HTTP/2 origin that allows streamCap concurrent
// streams per connection: every stream gets its head and an event at once, then stays
// open.
func h2StreamServer(t *testing.T, streamCap uint32) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: hello\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: int(streamCap)}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func runH2CapAgainst(t *testing.T, url string, streams int) report.ScenarioResult {
	t.Helper()
	return runAgainst(t, h2StreamCap(), Options{Target: url, StreamTemplate: "{target}/s/{session}", Streams: streams, Insecure: true,
		Thresholds: map[string]string{"h2-stream-cap/streams-open": "1s"}})
}

// TestH2StreamCapPassesAGenerousCap: 8 streams of one browser against a cap of 100 all
// open over one connection.
func TestH2StreamCapPassesAGenerousCap(t *testing.T) {
	res := runH2CapAgainst(t, h2StreamServer(t, 100).URL, 8)
	if c := res.Checks[0]; c.Verdict != report.VerdictPass {
		t.Errorf("cap 100, 8 streams: %s (%s; %s), want pass", c.Verdict, c.Measured, c.Detail)
	}
	if res.Metrics.Protocols["HTTP/2.0"] != 8 {
		t.Errorf("protocols %v, want 8 over HTTP/2", res.Metrics.Protocols)
	}
}

// TestH2StreamCapFailsNamingTheWaitingStreams: against a cap of 5, 3 of 8 streams wait,
// and the check says so.
func TestH2StreamCapFailsNamingTheWaitingStreams(t *testing.T) {
	res := runH2CapAgainst(t, h2StreamServer(t, 5).URL, 8)
	c := res.Checks[0]
	if c.Verdict != report.VerdictFail {
		t.Fatalf("cap 5, 8 streams: %s (%s; %s), want fail", c.Verdict, c.Measured, c.Detail)
	}
	if res.Metrics.Streams != 5 {
		t.Errorf("%d streams opened, want exactly the cap 5", res.Metrics.Streams)
	}
	if want := "unopened_streams 3"; !strings.Contains(c.Measured, want) {
		t.Errorf("measured %q lacks %q", c.Measured, want)
	}
}
