package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// Doubles of broken (and one correct) SSE services, each judged by `run ... hold`
// through the CLI entry point: none of the broken ones may pass.

// rawServer accepts TCP connections on loopback and hands each to serve, which owns
// the connection until it returns. Close ends every connection and waits for serve.
type rawServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newRawServer(t *testing.T, serve func(c net.Conn, done <-chan struct{})) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(c, s.done)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() }

func (s *rawServer) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// readRequest reads one request head from c.
func readRequest(c net.Conn) bool {
	_, err := http.ReadRequest(bufio.NewReader(c))
	return err == nil
}

// sseHandler serves 200 text/event-stream and then calls body until the client leaves.
func sseHandler(body func(w http.ResponseWriter, f http.Flusher, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		f.Flush()
		body(w, f, r)
	})
}

// holdRun runs `run ... hold` against target with the given extra flags and returns
// the exit code, stderr and the result file.
func holdRun(t *testing.T, target string, extra ...string) (int, string, *report.Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	args := append([]string{"run", "--target", target, "--stream-url", "{target}/x?s={session}",
		"--progress-url", "none", "--metrics-url", "none", "--streams", "3", "--hold", "1s", "--out", out, "--format", "json"}, extra...)
	args = append(args, "hold")
	var stdout bytes.Buffer
	env, stderr := serveTestEnv(&stdout)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, args, env)
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("no result file (exit %d): %v\nstderr: %s", code, err, stderr)
	}
	return code, stderr.String(), res
}

func holdChecks(t *testing.T, res *report.Result) (report.ScenarioResult, map[string]report.Check) {
	t.Helper()
	if len(res.Scenarios) != 1 {
		t.Fatalf("%d scenarios in the result", len(res.Scenarios))
	}
	s := res.Scenarios[0]
	byName := map[string]report.Check{}
	for _, c := range s.Checks {
		byName[c.Name] = c
	}
	return s, byName
}

func TestHoldJudgesBrokenServers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
		// code and verdict of the run; fail lists checks that must fail, na those that
		// must be n/a; notOpened a class every attempt that did not open must show.
		code      int
		verdict   report.Verdict
		fail, na  []string
		notOpened string
		stderr    string
	}{
		{
			name: "never answers",
			url: func(t *testing.T) string {
				return newRawServer(t, func(c net.Conn, done <-chan struct{}) { <-done }).URL()
			},
			code: ExitHarness, verdict: report.VerdictError, stderr: "target unreachable: no response head",
		},
		{
			name: "head one byte per second",
			url: func(t *testing.T) string {
				return newRawServer(t, func(c net.Conn, done <-chan struct{}) {
					if !readRequest(c) {
						return
					}
					head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
					tick := time.NewTicker(time.Second)
					defer tick.Stop()
					for i := 0; i < len(head); i++ {
						if _, err := c.Write([]byte{head[i]}); err != nil {
							return
						}
						select {
						case <-tick.C:
						case <-done:
							return
						}
					}
					<-done
				}).URL()
			},
			code: ExitHarness, verdict: report.VerdictError, stderr: "target unreachable: no response head",
		},
		{
			name: "head then silence",
			url: func(t *testing.T) string {
				srv := httptest.NewServer(sseHandler(func(_ http.ResponseWriter, _ http.Flusher, r *http.Request) { <-r.Context().Done() }))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			code: ExitFailed, verdict: report.VerdictFail,
			fail: []string{"every-event"}, na: []string{"no-missing-ids", "no-duplicate-ids"},
		},
		{
			name: "204 to everything",
			url: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			code: ExitFailed, verdict: report.VerdictFail,
			fail: []string{"streams-opened", "every-event"}, na: []string{"no-missing-ids"}, notOpened: "status-204",
		},
		{
			name: "500",
			url: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "boom", http.StatusInternalServerError)
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			code: ExitFailed, verdict: report.VerdictFail,
			fail: []string{"streams-opened", "every-event", "errors"}, notOpened: "status-500",
		},
		{
			name: "wrong content type",
			url: func(t *testing.T) string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					for i := 0; ; i++ {
						if _, err := fmt.Fprintf(w, "id: %d\ndata: x\n\n", i); err != nil {
							return
						}
						w.(http.Flusher).Flush()
						select {
						case <-r.Context().Done():
							return
						case <-time.After(100 * time.Millisecond):
						}
					}
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			},
			code: ExitFailed, verdict: report.VerdictFail,
			fail: []string{"streams-opened", "every-event", "errors"}, notOpened: "content-type",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stderr, res := holdRun(t, tc.url(t))
			s, checks := holdChecks(t, res)
			if code != tc.code || s.Verdict != tc.verdict || res.Verdict != tc.verdict {
				t.Fatalf("exit %d, scenario %s, run %s; want exit %d, %s\nstderr: %s\nerror: %s", code, s.Verdict, res.Verdict, tc.code, tc.verdict, stderr, s.Error)
			}
			if s.Metrics.Streams != 0 && tc.verdict == report.VerdictError {
				t.Errorf("%d streams counted as opened", s.Metrics.Streams)
			}
			for _, name := range tc.fail {
				if c := checks[name]; c.Verdict != report.VerdictFail {
					t.Errorf("%s: %s (%s; %s), want fail", name, c.Verdict, c.Measured, c.Detail)
				}
			}
			for _, name := range tc.na {
				if c := checks[name]; c.Verdict != report.VerdictNotApplicable || c.Detail == "" {
					t.Errorf("%s: %s (%q), want n/a with a reason", name, c.Verdict, c.Detail)
				}
			}
			if tc.notOpened != "" {
				if s.Metrics.NotOpened[tc.notOpened] == 0 {
					t.Errorf("not opened %v, want %s counted", s.Metrics.NotOpened, tc.notOpened)
				}
				if c := checks["streams-opened"]; !strings.Contains(c.Detail, tc.notOpened) || !strings.Contains(c.Detail, "0 of 3 streams opened") {
					t.Errorf("streams-opened detail %q does not show 0 of 3 opened and the class %s", c.Detail, tc.notOpened)
				}
			}
			if tc.stderr != "" && !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
		})
	}
}

// TestHoldPassesACorrectServer: a server that sends every stream an event with a
// sequential id every 100ms passes hold, every check judged.
func TestHoldPassesACorrectServer(t *testing.T) {
	t.Parallel()
	srv := tickingServer(t)
	code, stderr, res := holdRun(t, srv.URL, "--strict")
	s, _ := holdChecks(t, res)
	if code != ExitOK || s.Verdict != report.VerdictPass || res.Verdict != report.VerdictPass {
		t.Fatalf("exit %d, verdict %s; want 0, pass\nstderr: %s\nchecks: %+v", code, s.Verdict, stderr, s.Checks)
	}
	for _, c := range s.Checks {
		if c.Name == report.CheckRunnerHealthy {
			continue // the runner's own health is the test machine's (runhealth_test.go)
		}
		if c.Verdict != report.VerdictPass {
			t.Errorf("%s: %s (%s; %s)", c.Name, c.Verdict, c.Measured, c.Detail)
		}
	}
	if s.Metrics.Streams != 3 {
		t.Errorf("%d streams opened, want 3", s.Metrics.Streams)
	}
}

// TestHoldClosedPortExit3: nobody listens: no TCP connection, exit 3 with one line.
func TestHoldClosedPortExit3(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := "http://" + ln.Addr().String()
	ln.Close()
	code, stderr, res := holdRun(t, target)
	s, _ := holdChecks(t, res)
	if code != ExitHarness || s.Verdict != report.VerdictError || s.Metrics.Streams != 0 {
		t.Fatalf("exit %d, verdict %s, streams %d; want 3, error, 0\nstderr: %s", code, s.Verdict, s.Metrics.Streams, stderr)
	}
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "unreachable") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "no TCP connection") {
		t.Errorf("want one line saying no TCP connection, got %q", stderr)
	}
}

// TestHugeResponseHeadIsBounded: a server that answers with 100 MB of header fields
// ends each attempt at the 64 KiB head limit with its own error class: the run fails
// (the target answered), and the runner allocates a bounded amount whatever was sent.
// Not parallel: the allocation figure is the process's, so no other test may run.
func TestHugeResponseHeadIsBounded(t *testing.T) {
	const total = 100 << 20
	var sent atomic.Int64
	srv := newRawServer(t, func(c net.Conn, done <-chan struct{}) {
		if !readRequest(c) {
			return
		}
		line := []byte("X-Pad: " + strings.Repeat("a", 4086) + "\r\n") // 4 KiB a line
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")); err != nil {
			return
		}
		for n := 0; n < total; n += len(line) {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			w, err := c.Write(line)
			sent.Add(int64(w))
			if err != nil {
				return
			}
		}
		c.Write([]byte("\r\n"))
		<-done
	})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, stderr, res := holdRun(t, srv.URL())
	runtime.ReadMemStats(&after)
	s, checks := holdChecks(t, res)
	if code != ExitFailed || s.Verdict != report.VerdictFail {
		t.Fatalf("exit %d, verdict %s; want 1, fail\nstderr: %s\nerror: %s", code, s.Verdict, stderr, s.Error)
	}
	if s.Metrics.NotOpened["head-too-large"] != 3 || s.Metrics.Errors["head-too-large"] != 3 {
		t.Errorf("not opened %v, errors %v; want head-too-large 3 (one per stream, not retried)", s.Metrics.NotOpened, s.Metrics.Errors)
	}
	if c := checks["streams-opened"]; c.Verdict != report.VerdictFail || !strings.Contains(c.Detail, "head-too-large") {
		t.Errorf("streams-opened %s (%s)", c.Verdict, c.Detail)
	}
	t.Logf("allocated %d KB during the run; the server got %d KB out", (after.TotalAlloc-before.TotalAlloc)>>10, sent.Load()>>10)
	// Reading 100 MB of head would allocate at least that much; the limit keeps the
	// whole run (three streams, rendering included) to a few MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("the run allocated %d MB against a 100 MB head; want it bounded by the 64 KiB limit", alloc>>20)
	}
	srv.Close()
	if n := sent.Load(); n >= total {
		t.Errorf("the server got all %d MB out: the runner kept reading", n>>20)
	}
}

// TestAllNAScenarioIsNotAPass: mid-stream-disconnect without server metrics judges
// nothing: the run is n/a, not pass, the summary says why, and --strict fails it.
func TestAllNAScenarioIsNotAPass(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(sseHandler(func(_ http.ResponseWriter, _ http.Flusher, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	for _, strict := range []bool{false, true} {
		args := []string{"run", "--target", srv.URL, "--metrics-url", "none", "--progress-url", "none", "--format", "json"}
		if strict {
			args = append(args, "--strict")
		}
		var stdout bytes.Buffer
		env, stderr := serveTestEnv(&stdout)
		code := Main(context.Background(), append(args, "mid-stream-disconnect"), env)
		want := ExitOK
		if strict {
			want = ExitFailed
		}
		if code != want {
			t.Errorf("strict %v: exit %d, want %d\n%s", strict, code, want, stderr)
		}
		if !strings.Contains(stdout.String(), `"verdict": "n/a"`) || strings.Contains(stdout.String(), `"verdict": "pass"`) {
			t.Errorf("strict %v: result is not n/a throughout:\n%s", strict, stdout.String())
		}
		if !strings.Contains(stderr.String(), "1 of 1 scenarios could not be judged: mid-stream-disconnect: the target's metrics are not read") {
			t.Errorf("strict %v: stderr does not say what could not be judged and why: %q", strict, stderr)
		}
	}
}

// metricsDouble serves the reference server's gauges from open, the number of streams a
// double holds open: a correct server's metrics (senders and goroutines track streams).
func metricsDouble(t *testing.T, open *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := open.Load()
		fmt.Fprintf(w, "sseref_streams_open %d\nsseref_senders_active %d\ngo_goroutines %d\nprocess_resident_memory_bytes %d\n", n, n, 10+2*n, 20<<20+n<<13)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// TestDisconnectWithServerMetricsJudgesBrokenServers: a scenario judged on server metrics
// does not pass because the metrics look fine: streams that never opened or never got
// events fail its checks, an unreachable target is exit 3, and a correct server passes.
func TestDisconnectWithServerMetricsJudgesBrokenServers(t *testing.T) {
	t.Parallel()
	ticking := func(open *atomic.Int64) http.Handler {
		return sseHandler(func(w http.ResponseWriter, f http.Flusher, r *http.Request) {
			open.Add(1)
			defer open.Add(-1)
			tickEvents(w, f, r, func(int) string { return "x" })
		})
	}
	for _, tc := range []struct {
		name    string
		handler func(open *atomic.Int64) http.Handler // nil: a TCP server that never answers
		code    int
		verdict report.Verdict
	}{
		{"never answers", nil, ExitHarness, report.VerdictError},
		{"204 to everything", func(*atomic.Int64) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		}, ExitFailed, report.VerdictFail},
		{"head then silence", func(open *atomic.Int64) http.Handler {
			return sseHandler(func(_ http.ResponseWriter, _ http.Flusher, r *http.Request) {
				open.Add(1)
				defer open.Add(-1)
				<-r.Context().Done()
			})
		}, ExitFailed, report.VerdictFail},
		{"500", func(*atomic.Int64) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) })
		}, ExitFailed, report.VerdictFail},
		{"correct", ticking, ExitOK, report.VerdictPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var open atomic.Int64
			var target string
			if tc.handler == nil {
				target = newRawServer(t, func(c net.Conn, done <-chan struct{}) { <-done }).URL()
			} else {
				srv := httptest.NewServer(tc.handler(&open))
				t.Cleanup(srv.Close)
				target = srv.URL
			}
			out := filepath.Join(t.TempDir(), "result.json")
			var stdout bytes.Buffer
			env, stderr := serveTestEnv(&stdout)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			code := Main(ctx, []string{"run", "--target", target, "--stream-url", "{target}/x?s={session}", "--progress-url", "none",
				"--metrics-url", metricsDouble(t, &open), "--streams", "4", "--out", out, "--format", "json", "mid-stream-disconnect"}, env)
			res, err := report.Load(out)
			if err != nil {
				t.Fatalf("no result (exit %d): %v\n%s", code, err, stderr)
			}
			s := res.Scenarios[0]
			if code != tc.code || s.Verdict != tc.verdict {
				t.Fatalf("exit %d, verdict %s; want %d, %s\nerror: %s\nchecks: %+v\nstderr: %s", code, s.Verdict, tc.code, tc.verdict, s.Error, s.Checks, stderr)
			}
			for _, c := range s.Checks {
				if c.Name == report.CheckRunnerHealthy {
					continue // the runner's own health is the test machine's (runhealth_test.go)
				}
				want := report.VerdictFail
				if tc.verdict == report.VerdictPass {
					want = report.VerdictPass
				}
				if tc.verdict != report.VerdictError && c.Verdict != want {
					t.Errorf("%s: %s (%s; %s), want %s", c.Name, c.Verdict, c.Measured, c.Detail, want)
				}
			}
		})
	}
}
