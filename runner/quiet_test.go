package runner

import (
	"net/http"
	"testing"
	"time"
)

// TestQuietAndLivedOnTheWire: a heartbeat after a silence carries that silence in
// Quiet, and the Closed record of a stream cut mid-body (no chunked terminator) carries
// its lifetime in Lived and the silence before the cut in Quiet; the Closed record of
// the refused retry has neither.
func TestQuietAndLivedOnTheWire(t *testing.T) {
	const silence, beforeCut = 300 * time.Millisecond, 200 * time.Millisecond
	srv, _ := connServer(t, http.StatusServiceUnavailable, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(silence) // the server's own schedule: the silence the client must see
		_, _ = w.Write([]byte(": ping\n\n"))
		w.(http.Flusher).Flush()
		time.Sleep(beforeCut)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // mid-body: the chunked body never ends
		}
	})
	rec := newRecorder(t)
	startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, MinReconnect: time.Millisecond}, rec.ch)
	closed := rec.waitKind(t, RecordClosed, 2)
	rec.flush()
	comments := rec.kind(RecordComment)
	if len(comments) != 1 || comments[0].Quiet < silence || comments[0].Quiet > silence+time.Second {
		t.Fatalf("comments %+v: want one with Quiet about %v", comments, silence)
	}
	cut := closed[0]
	if cut.Reason != CloseNetworkError || cut.Lived < silence+beforeCut || cut.Quiet < beforeCut || cut.Quiet > beforeCut+time.Second {
		t.Errorf("cut: reason %s, lived %v, quiet %v: want network-error, lived >= %v, quiet about %v", cut.Reason, cut.Lived, cut.Quiet, silence+beforeCut, beforeCut)
	}
	if refused := closed[1]; refused.Lived != 0 || refused.Quiet != 0 {
		t.Errorf("refused attempt: lived %v, quiet %v, want 0 and 0", refused.Lived, refused.Quiet)
	}
}
