package scenarios

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// gaugeServer is a double of a session stream server with a Prometheus gauge of its
// open streams: each stream gets an event every 20ms. With leak set it never notices a
// client that left: the gauge stays up, as a server that keeps writing into a dead
// connection's buffer does.
func gaugeServer(t *testing.T, leak bool) *httptest.Server {
	t.Helper()
	var open atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE open_streams gauge\nopen_streams %d\n", open.Load())
	})
	mux.HandleFunc("/s/", func(w http.ResponseWriter, r *http.Request) {
		open.Add(1)
		if !leak {
			defer open.Add(-1)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "id: %d\ndata: x\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func disconnectAgainst(t *testing.T, url string) report.Check {
	t.Helper()
	res := runAgainst(t, midStreamDisconnect(), Options{Target: url, StreamTemplate: "{target}/s/{session}", Streams: 4,
		MetricsURL: url + "/metrics", OpenStreamsMetric: "open_streams",
		Thresholds: map[string]string{"mid-stream-disconnect/streams-released": "1s"}})
	if len(res.Checks) != 3 {
		t.Fatalf("checks %+v, want the 3 declared", res.Checks)
	}
	if c := res.Checks[1]; c.Name != "senders-stopped" || c.Verdict != report.VerdictNotApplicable {
		t.Errorf("a metric the target lacks: %s %s (%s), want senders-stopped n/a", c.Name, c.Verdict, c.Detail)
	}
	return res.Checks[0]
}

// TestSettleCheckPassesAServerThatNotices: the gauge is back at its baseline after the
// declared load and the hook's drop, so the settle check passes.
func TestSettleCheckPassesAServerThatNotices(t *testing.T) {
	c := disconnectAgainst(t, gaugeServer(t, false).URL)
	if c.Name != "streams-released" || c.Verdict != report.VerdictPass {
		t.Errorf("%s: %s (%s; %s), want streams-released pass", c.Name, c.Verdict, c.Measured, c.Detail)
	}
}

// TestSettleCheckFailsAServerThatLeaks: the gauge stays at the 4 dropped streams, so the
// check fails with the excess over the baseline.
func TestSettleCheckFailsAServerThatLeaks(t *testing.T) {
	c := disconnectAgainst(t, gaugeServer(t, true).URL)
	if c.Name != "streams-released" || c.Verdict != report.VerdictFail {
		t.Fatalf("%s: %s (%s; %s), want streams-released fail", c.Name, c.Verdict, c.Measured, c.Detail)
	}
	if c.Measured != "4" {
		t.Errorf("measured %q, want the 4 streams still counted open", c.Measured)
	}
}

// originServer is a double of an origin with SSE streams that stay open and a plain
// /healthz, over HTTP/2 (TLS) or plain HTTP/1.1.
func originServer(t *testing.T, h2 bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/s/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: hello\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewUnstartedServer(mux)
	if h2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestFetchCheckOverHTTP1AndHTTP2: over HTTP/1.1 a browser's 7th and 8th streams and
// its ordinary request wait for one of its 6 connections, so both checks fail; over
// HTTP/2 both pass.
func TestFetchCheckOverHTTP1AndHTTP2(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		srv := originServer(t, h2)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res := Run(ctx, sixConnectionLimit(), Options{Target: srv.URL, StreamTemplate: "{target}/s/{session}", SixConnectionConfig: SixConnectionConfig{OrdinaryURL: srv.URL + "/healthz"},
			Streams: 8, Insecure: true, Thresholds: map[string]string{"six-connection-limit/streams-open": "500ms", "six-connection-limit/ordinary-request": "500ms"}})
		cancel()
		if res.Error != "" {
			t.Fatalf("h2 %v: scenario error: %s", h2, res.Error)
		}
		want := report.VerdictFail
		if h2 {
			want = report.VerdictPass
		}
		for _, c := range res.Checks[:2] {
			if c.Verdict != want {
				t.Errorf("h2 %v: %s %s (%s; %s), want %s", h2, c.Name, c.Verdict, c.Measured, c.Detail, want)
			}
		}
	}
}

// TestSpanCountsStreamsThatMissTheirNextMark: a Span counts, among the streams that
// got to From, those whose To came late or never; a close before the done event does
// not count as the end after it.
func TestSpanCountsStreamsThatMissTheirNextMark(t *testing.T) {
	done := Mark{Event: "done"}
	ended := &CheckSpec{Name: "ended", Default: "1s", Span: &Span{From: done, To: Mark{Close: runner.CloseEOF, AfterOf: "done"}}}
	sc := &Scenario{Name: "span", Checks: []*CheckSpec{ended}, Load: []Phase{{Streams: 1, Until: UntilOpen}}}
	h := newHarness(sc, Options{Target: "http://127.0.0.1:1", StreamTemplate: "{target}/{session}"})
	defer h.Finish()
	w := h.watchMarks()
	t0 := time.Now()
	ev := func(stream int, typ string, at time.Duration) runner.Record {
		return runner.Record{Kind: runner.RecordEvent, Stream: stream, EventType: typ, Time: t0.Add(at)}
	}
	closed := func(stream int, at time.Duration) runner.Record {
		return runner.Record{Kind: runner.RecordClosed, Stream: stream, Reason: runner.CloseEOF, Time: t0.Add(at)}
	}
	for _, r := range []runner.Record{
		ev(0, "done", 0), closed(0, 500*time.Millisecond), // ended in time
		closed(1, 0), ev(1, "done", time.Second), // closed before done only: never ended after it
		ev(2, "done", 0), closed(2, 3*time.Second), // ended late
		ev(3, "tick", 0), // no done: not counted
	} {
		w.add(&r)
	}
	var srcs []*runner.EventSource
	for i := range 4 {
		srcs = append(srcs, fakeSource(t, i))
	}
	w.judge(h, ended, srcs, t0)
	m := h.measures[len(h.measures)-1]
	if m.Value != 2 || m.Of != 3 {
		t.Errorf("span measure %+v, want 2 of 3 streams late or never", m)
	}
}

// fakeSource is an EventSource labelled with stream i that is never run.
func fakeSource(t *testing.T, i int) *runner.EventSource {
	t.Helper()
	b := runner.NewBrowser(runner.BrowserConfig{ID: i})
	t.Cleanup(b.Close)
	es, err := b.NewEventSource(runner.SourceConfig{URL: "http://127.0.0.1:1/x", Stream: i}, runner.Chan(make(chan runner.Record, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestPhaseWithoutNginxIsLeftOutAndItsChecksAreNA: a phase whose nginx cannot start
// (here: no configuration) opens nothing, and a check whose rule reads its group is n/a
// with the reason, while the other phase is judged.
func TestPhaseWithoutNginxIsLeftOutAndItsChecksAreNA(t *testing.T) {
	srv := originServer(t, false)
	opened := func(group string) *CheckSpec {
		return &CheckSpec{Name: group + "-opened", Default: "0", Rule: &report.Rule{Metric: "unopened_streams", Group: group, Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceOpened}}}
	}
	sc := &Scenario{Name: "paths", Checks: []*CheckSpec{opened("direct"), opened("nginx")},
		Load: []Phase{{Group: "direct", Streams: 2, Until: UntilOpen}, {Group: "nginx", Streams: 2, Nginx: &NginxPath{}, Until: UntilOpen}}}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := Run(ctx, sc, Options{Target: srv.URL, StreamTemplate: "{target}/s/{session}"})
	if res.Error != "" || len(res.Checks) != 2 {
		t.Fatalf("error %q, checks %+v", res.Error, res.Checks)
	}
	if c := res.Checks[0]; c.Verdict != report.VerdictPass {
		t.Errorf("direct: %s (%s)", c.Verdict, c.Detail)
	}
	if c := res.Checks[1]; c.Verdict != report.VerdictNotApplicable || !strings.Contains(c.Detail, "no nginx configuration") {
		t.Errorf("nginx: %s (%s), want n/a saying why", c.Verdict, c.Detail)
	}
	if res.Metrics.Attempts != 2 {
		t.Errorf("%d attempts, want the direct phase's 2 only", res.Metrics.Attempts)
	}
}
