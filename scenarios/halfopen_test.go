package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// reaperServer is a double of a session stream server with a progress callback and a
// gauge of its open streams. With deadline set, a write that blocks for 300ms ends the
// stream (a write deadline; its send buffer is 16 KiB); with lifetime set, a stream ends after 4s (a maximum
// stream lifetime). It writes a tick every 50ms and each progress message it is given.
func reaperServer(t *testing.T, deadline, lifetime bool) *httptest.Server {
	t.Helper()
	var open atomic.Int64
	var mu sync.Mutex
	sessions := map[string]chan string{} // bounded by the sessions of the test
	session := func(id string) chan string {
		mu.Lock()
		defer mu.Unlock()
		if sessions[id] == nil {
			sessions[id] = make(chan string, 8)
		}
		return sessions[id]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE open_streams gauge\nopen_streams %d\n", open.Load())
	})
	mux.HandleFunc("POST /p/{session}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Message string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case session(r.PathValue("session")) <- body.Message:
		default: // a full queue drops the message, as a bounded server does
		}
	})
	mux.HandleFunc("/s/{session}", func(w http.ResponseWriter, r *http.Request) {
		open.Add(1)
		defer open.Add(-1)
		msgs := session(r.PathValue("session"))
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var end <-chan time.Time
		if lifetime {
			end = time.After(4 * time.Second)
		}
		data := "tick"
		for i := 0; ; i++ {
			if deadline {
				_ = rc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			}
			if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, data); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-tick.C:
				data = "tick"
			case data = <-msgs:
			case <-end:
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(16 << 10) // not the loopback's megabytes: the fillers fill it
		}
		return ctx
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestHalfOpenAgainstDoubles: the declared half-open passes a server with a write
// deadline and a maximum lifetime, fails reaped-stopped-readers without the deadline
// (the stopped readers' streams stay open) and reaped-blackholed without the lifetime
// (the black-holed streams stay open), each with the other check passing.
func TestHalfOpenAgainstDoubles(t *testing.T) {
	for _, tc := range []struct {
		name               string
		deadline, lifetime bool
		stopped, blackhole report.Verdict
	}{
		{"reaps", true, true, report.VerdictPass, report.VerdictPass},
		{"no-write-deadline", false, true, report.VerdictFail, report.VerdictPass},
		{"no-lifetime", true, false, report.VerdictPass, report.VerdictFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := reaperServer(t, tc.deadline, tc.lifetime)
			res := runAgainst(t, halfOpen(), Options{Target: srv.URL, StreamTemplate: "{target}/s/{session}", ProgressTemplate: "{target}/p/{session}",
				MetricsURL: srv.URL + "/metrics", OpenStreamsMetric: "open_streams", Streams: 6,
				Thresholds: map[string]string{"half-open/reaped-stopped-readers": "1500ms", "half-open/reaped-blackholed": "6s"}})
			stopped, blackholed := checkOf(t, res, "reaped-stopped-readers"), checkOf(t, res, "reaped-blackholed")
			if stopped.Verdict != tc.stopped || blackholed.Verdict != tc.blackhole {
				t.Errorf("reaped-stopped-readers %s (%s), reaped-blackholed %s (%s); want %s and %s",
					stopped.Verdict, stopped.Detail, blackholed.Verdict, blackholed.Detail, tc.stopped, tc.blackhole)
			}
			if res.Metrics.Streams != 6 || res.Load.Requested.Streams != 6 {
				t.Errorf("%d streams opened of %d requested, want 6 (4 stopped readers, 2 behind the proxy)", res.Metrics.Streams, res.Load.Requested.Streams)
			}
			if blackholed.Verdict == report.VerdictPass && !strings.Contains(blackholed.Detail, "bytes dropped by the proxy") {
				t.Errorf("reaped-blackholed: %q does not say what the proxy dropped", blackholed.Detail)
			}
		})
	}
}
