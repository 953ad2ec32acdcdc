package runner

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// responseCase is one entry of testdata/response-cases.json: what a server answers
// and what an EventSource must do with it.
type responseCase struct {
	Name     string            `json:"name"`
	Status   *int              `json:"status"`
	Headers  map[string]string `json:"headers"`
	Body     string            `json:"body"`
	Expected string            `json:"expected_client"`
}

func TestResponseCases(t *testing.T) {
	raw, err := os.ReadFile("testdata/response-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []responseCase `json:"response_cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 20 {
		t.Fatalf("only %d response cases in testdata", len(file.Cases))
	}
	for _, tc := range file.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			if strings.HasPrefix(tc.Name, "cors-") {
				t.Skip("CORS is not modelled: simulated clients make same-origin requests, so no Origin check applies")
			}
			runResponseCase(t, tc)
		})
	}
}

func runResponseCase(t *testing.T, tc responseCase) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			streamHeaders(w)
			writeEvent(w, "data: final\n\n")
			<-r.Context().Done()
			return
		}
		n := hits.Add(1)
		if n > 1 && tc.Expected == "reconnect" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if tc.Status == nil {
			// No response at all: the connection is dropped.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		w.Header()["Content-Type"] = nil // no sniffing: a missing type stays missing
		for k, v := range tc.Headers {
			if k == "Location" {
				v = "/final"
			}
			w.Header().Set(k, v)
		}
		w.WriteHeader(*tc.Status)
		io.WriteString(w, tc.Body)
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL + "/stream", Retry: 20 * time.Millisecond}, rec.ch)
	switch tc.Expected {
	case "open", "follow-redirect":
		if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
			t.Fatalf("want an open stream with an event: %v (reason %q)", err, es.Reason())
		}
		h := rec.waitKind(t, RecordHeaders, 1)
		if h[0].Status != 200 {
			t.Errorf("final status %d", h[0].Status)
		}
	case "fail":
		waitDone(t, es, 10*time.Second, rec)
		if hits.Load() != 1 || es.Opens() != 0 || rec.count(RecordReconnect) != 0 || rec.count(RecordEvent) != 0 {
			t.Errorf("hits=%d opens=%d reconnects=%d events=%d, want a failure without reconnect",
				hits.Load(), es.Opens(), rec.count(RecordReconnect), rec.count(RecordEvent))
		}
		switch es.Reason() {
		case CloseBadStatus, CloseBadContentType, CloseNoContent:
		default:
			t.Errorf("reason %q, want a failing reason", es.Reason())
		}
	case "reconnect":
		waitDone(t, es, 10*time.Second, rec)
		if hits.Load() != 2 || rec.count(RecordReconnect) != 1 {
			t.Errorf("hits=%d reconnects=%d, want 2 and 1", hits.Load(), rec.count(RecordReconnect))
		}
	default:
		t.Fatalf("unknown expected_client %q", tc.Expected)
	}
}
