package scenarios

import (
	"context"
	"errors"
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

// stageServer is a double of a session stream server with a gauge of its open streams,
// which it keeps as a real server does, except for two kinds of session (by the tag in
// the id): a "leak" stream never leaves the gauge, even once its client is gone (a
// server that never notices a vanished client); an "end" stream is ended by the server
// after 300ms (a maximum lifetime). It counts the "end" streams it has seen.
type stageServer struct {
	*httptest.Server
	open, ends atomic.Int64
}

func newStageServer(t *testing.T) *stageServer {
	t.Helper()
	s := &stageServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE open_streams gauge\nopen_streams %d\n", s.open.Load())
	})
	mux.HandleFunc("/s/", func(w http.ResponseWriter, r *http.Request) {
		leak, end := strings.Contains(r.URL.Path, "-leak"), strings.Contains(r.URL.Path, "-end")
		s.open.Add(1)
		if !leak {
			defer s.open.Add(-1)
		}
		if end {
			s.ends.Add(1)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		lifetime := time.After(300 * time.Millisecond)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "id: %d\ndata: x\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-lifetime:
				if end {
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// stagedDecl is a two-stage declaration: streams a leaking server never lets go, then
// streams it ends by itself; each stage's check asks for the open streams back at the
// stage's baseline. The hook records, at each call, how many stages it was given and
// how many "end" streams the server had seen.
type stagedDecl struct {
	sc                *Scenario
	leaked, ended, ok *CheckSpec
	mu                sync.Mutex
	calls             [][2]int64 // per hook call: stages given, "end" streams seen
}

func newStagedDecl(srv *stageServer) *stagedDecl {
	d := &stagedDecl{
		leaked: &CheckSpec{Name: "leaked", Default: "1s", Settles: &Settle{Metric: OpenStreamsMetric, Missed: "after the step: leaked"}},
		ended:  &CheckSpec{Name: "ended", Default: "3s", Settles: &Settle{Metric: OpenStreamsMetric, OffAtZero: "no lifetime known"}},
		ok:     &CheckSpec{Name: "all-opened", Default: "0", Rule: &report.Rule{Metric: "unopened_streams", Op: "<=", Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceOpened}}},
	}
	d.sc = &Scenario{
		Name:   "staged",
		Checks: []*CheckSpec{d.leaked, d.ended, d.ok},
		Load: []Phase{
			{Tag: "leak", Streams: 3, NoReconnect: true, Until: UntilEvents, Events: 1, Settles: []*CheckSpec{d.leaked}, Describe: "leaked streams"},
			{Tag: "end", Streams: 2, NoReconnect: true, Until: UntilEvents, Events: 1, Settles: []*CheckSpec{d.ended}, Describe: "ended streams"},
		},
		hook: func(_ context.Context, _ *Harness, opened Opened) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.calls = append(d.calls, [2]int64{int64(len(opened.Phases)), srv.ends.Load()})
			return nil
		},
	}
	return d
}

func (d *stagedDecl) run(t *testing.T, srv *stageServer, thresholds map[string]string, metric string) report.ScenarioResult {
	t.Helper()
	if err := d.sc.Validate(); err != nil {
		t.Fatal(err)
	}
	return runAgainst(t, d.sc, Options{Target: srv.URL, StreamTemplate: "{target}/s/{session}",
		MetricsURL: srv.URL + "/metrics", OpenStreamsMetric: metric, Thresholds: thresholds})
}

// TestStagesRunInOrderAgainstTheirOwnBaselines: the second stage opens only once the
// first was judged (the hook saw no stream of it), and it is judged against the
// figures from just before it: the 3 leaked streams the server still counts do not
// fail it, while they fail the first stage with the excess and its Missed text. The
// rule check is judged once both stages ran.
func TestStagesRunInOrderAgainstTheirOwnBaselines(t *testing.T) {
	srv := newStageServer(t)
	d := newStagedDecl(srv)
	res := d.run(t, srv, nil, "open_streams")
	if c := checkOf(t, res, "leaked"); c.Verdict != report.VerdictFail || c.Measured != "3" || !strings.Contains(c.Detail, "3 of 3 still open 1s after the step: leaked") {
		t.Errorf("leaked: %s, measured %q (%s); want fail, 3, saying 3 of 3 still open", c.Verdict, c.Measured, c.Detail)
	}
	if c := checkOf(t, res, "ended"); c.Verdict != report.VerdictPass || !strings.Contains(c.Detail, "open_streams back to 3") {
		t.Errorf("ended: %s (%s), want pass against the baseline of 3 the leak left", c.Verdict, c.Detail)
	}
	if c := checkOf(t, res, "all-opened"); c.Verdict != report.VerdictPass || c.Rule == nil {
		t.Errorf("all-opened: %s (%+v), want a rule that passes", c.Verdict, c.Rule)
	}
	d.mu.Lock()
	calls := d.calls
	d.mu.Unlock()
	if len(calls) != 2 || calls[0] != [2]int64{1, 0} || calls[1][0] != 2 || calls[1][1] != 2 {
		t.Errorf("hook calls (stages given, end streams seen) %v, want [[1 0] [2 2]]", calls)
	}
	if !strings.Contains(res.Description, "open_streams still 3 (baseline 0) 1s after leaked streams were reset") {
		t.Errorf("description %q does not note the settle wait that ran out", res.Description)
	}
	if res.Load.Requested.Streams != 5 || res.Metrics.Streams != 5 {
		t.Errorf("requested %d, opened %d streams, want 5", res.Load.Requested.Streams, res.Metrics.Streams)
	}
}

// TestStageOffAtZeroAndWithoutItsMetric: a stage whose only check has a threshold of 0
// and OffAtZero is n/a with its reason and not opened; without the metric both stages'
// checks are n/a, saying so, and no stream is opened at all.
func TestStageOffAtZeroAndWithoutItsMetric(t *testing.T) {
	srv := newStageServer(t)
	d := newStagedDecl(srv)
	res := d.run(t, srv, map[string]string{"staged/ended": "0s"}, "open_streams")
	if c := checkOf(t, res, "ended"); c.Verdict != report.VerdictNotApplicable || c.Detail != "no lifetime known" {
		t.Errorf("ended at 0s: %s (%s), want n/a saying no lifetime known", c.Verdict, c.Detail)
	}
	if checkOf(t, res, "leaked").Verdict != report.VerdictFail || srv.ends.Load() != 0 {
		t.Errorf("the first stage must still run (%s) and the second not open (%d end streams)", checkOf(t, res, "leaked").Verdict, srv.ends.Load())
	}

	srv = newStageServer(t)
	d = newStagedDecl(srv)
	res = d.run(t, srv, nil, "no_such_gauge")
	for _, name := range []string{"leaked", "ended"} {
		if c := checkOf(t, res, name); c.Verdict != report.VerdictNotApplicable || !strings.Contains(c.Detail, "no_such_gauge") {
			t.Errorf("%s without its metric: %s (%s), want n/a naming it", name, c.Verdict, c.Detail)
		}
	}
	if res.Metrics.Attempts != 0 || len(d.calls) != 0 {
		t.Errorf("%d attempts and %d hook calls without the metric, want none", res.Metrics.Attempts, len(d.calls))
	}
}

// TestStagedDeclarationsAreValidated: a phase that is no stage or waits on its own, a
// Settles check of no stage or of two, another kind of check, a hold and a negative
// receive buffer are refused, every problem at once.
func TestStagedDeclarationsAreValidated(t *testing.T) {
	a := &CheckSpec{Name: "a", Default: "1s", Settles: &Settle{Metric: OpenStreamsMetric}}
	b := &CheckSpec{Name: "b", Default: "1s", Settles: &Settle{Metric: OpenStreamsMetric}}
	c := &CheckSpec{Name: "c", Default: "1s", Settles: &Settle{Metric: OpenStreamsMetric}}
	r := &CheckSpec{Name: "r", Default: "1s", Reach: &Reach{Phase: 0, Until: Ended}}
	bad := &Scenario{Name: "bad", Checks: []*CheckSpec{a, b, c, r}, Hold: time.Second,
		Load: []Phase{
			{Streams: 1, Until: UntilOpen, Settles: []*CheckSpec{a}, RecvBuffer: -1},
			{Streams: 1, Until: UntilOpen, Settles: []*CheckSpec{a}},
			{Streams: 1, Until: UntilOpen},
			{Streams: 1, Until: UntilOpen, Settles: []*CheckSpec{b}, Wait: time.Second},
		}}
	err := bad.Validate()
	for _, want := range []string{"receive buffer -1", "neither publishes, holds", "phase 2: in a staged scenario every phase is a stage", "phase 1: a stage check that is not one", "phase 3: in a staged scenario", "check c: a Settles check of no stage", "check r: a staged scenario judges"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// recvServer is a double that, once told to, floods each stream until a write has
// blocked for 300ms (its own send buffer is 4 KiB), and records how many bytes each
// stream took before blocking: what the client's receive buffer holds.
type recvServer struct {
	*httptest.Server
	flood, ended chan struct{}
	mu           sync.Mutex
	taken        []int
}

func newRecvServer(t *testing.T) *recvServer {
	t.Helper()
	s := &recvServer{flood: make(chan struct{}), ended: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/s/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-s.flood:
		case <-r.Context().Done():
			return
		}
		rc := http.NewResponseController(w)
		chunk := []byte("data: " + strings.Repeat("x", 1000) + "\n\n")
		taken := 0
		for taken < 64<<20 {
			_ = rc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := w.Write(chunk)
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					taken = -1 // not blocked: the test fails on it
				}
				break
			}
			taken += n
		}
		s.mu.Lock()
		s.taken = append(s.taken, taken)
		s.mu.Unlock()
		s.ended <- struct{}{}
	})
	s.Server = httptest.NewUnstartedServer(mux)
	s.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4096)
		}
		return ctx
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// TestPhaseRecvBufferIsTheClientsBuffer: stopped readers with RecvBuffer 4096 take far
// fewer bytes before the server's writes block than with the system's buffer.
func TestPhaseRecvBufferIsTheClientsBuffer(t *testing.T) {
	taken := func(recv int) int {
		srv := newRecvServer(t)
		done := &CheckSpec{Name: "flooded", Default: "0", Rule: &report.Rule{Metric: "unopened_streams", Op: "<=", Limit: AtThreshold}}
		sc := &Scenario{Name: "recv", Checks: []*CheckSpec{done},
			Load: []Phase{{Streams: 2, NoReconnect: true, RecvBuffer: recv, Until: UntilEvents, Events: 1}},
			hook: func(ctx context.Context, _ *Harness, opened Opened) error {
				for _, s := range opened.All() {
					s.StopReading()
				}
				close(srv.flood)
				deadline := time.After(20 * time.Second)
				for range opened.All() { // each flood, until its write blocked
					select {
					case <-srv.ended:
					case <-deadline:
						return errors.New("the floods did not block within 20s")
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			}}
		if err := sc.Validate(); err != nil {
			t.Fatal(err)
		}
		res := runAgainst(t, sc, Options{Target: srv.URL, StreamTemplate: "{target}/s/{session}"})
		if c := checkOf(t, res, "flooded"); c.Verdict != report.VerdictPass {
			t.Fatalf("recv %d: %s (%s)", recv, c.Verdict, c.Detail)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.taken) != 2 {
			t.Fatalf("recv %d: %d floods ended, want 2", recv, len(srv.taken))
		}
		most := 0
		for _, n := range srv.taken {
			if n < 0 {
				t.Fatalf("recv %d: a flood ended with an error that is no blocked write", recv)
			}
			most = max(most, n)
		}
		return most
	}
	small, system := taken(4096), taken(0)
	t.Logf("bytes taken before the writes blocked: %d with a 4 KiB receive buffer, %d with the system's", small, system)
	if small*2 > system {
		t.Errorf("with RecvBuffer 4096 the clients took %d bytes, with the system's buffer %d: want far fewer", small, system)
	}
}
