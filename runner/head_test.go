package runner

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestResponseHeadLimit: a head over MaxResponseHead ends the attempt with
// ErrHeadTooLarge before any response counts as opened, over HTTP/1.1 and HTTP/2, and
// is not retried; a head just under the limit opens the stream.
func TestResponseHeadLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h2     bool
		pad    int
		tooBig bool
	}{
		{"http1 over", false, MaxResponseHead + 1024, true},
		{"http1 under", false, MaxResponseHead - 1024, false},
		{"h2 over", true, MaxResponseHead + 1024, true},
		{"h2 under", true, MaxResponseHead - 2048, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Header fields of 1 KiB each, pad bytes in all.
				for i := 0; i < tc.pad/1024; i++ {
					w.Header().Add("X-Pad", strings.Repeat("p", 1010))
				}
				streamHeaders(w)
				writeEvent(w, "data: x\n\n")
				<-r.Context().Done()
			}))
			serve(t, srv, tc.h2)
			cfg := BrowserConfig{Insecure: tc.h2}
			rec := newRecorder(t)
			es := startSource(t, NewBrowser(cfg), SourceConfig{URL: srv.URL + "/events", Retry: 10 * time.Millisecond}, rec.ch)
			if !tc.tooBig {
				rec.waitKind(t, RecordEvent, 1)
				h := rec.kind(RecordHeaders)
				if len(h) != 1 || !h[0].Accepted || !h[0].FirstAccepted {
					t.Fatalf("headers %+v, want one accepted, the stream's first", h)
				}
				if want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[tc.h2]; h[0].Proto != want {
					t.Errorf("protocol %s, want %s", h[0].Proto, want)
				}
				return
			}
			waitDone(t, es, 10*time.Second, rec)
			errs := rec.kind(RecordError)
			if len(errs) != 1 || errs[0].Class != ErrHeadTooLarge || !errs[0].BeforeHead {
				t.Fatalf("errors %+v, want one head-too-large before the head", errs)
			}
			if n := rec.count(RecordHeaders); n != 0 {
				t.Errorf("%d headers records for a head over the limit", n)
			}
			if es.Reason() != CloseTooLarge || rec.count(RecordReconnect) != 0 {
				t.Errorf("reason %s, %d reconnects; want too-large without a retry", es.Reason(), rec.count(RecordReconnect))
			}
		})
	}
}
